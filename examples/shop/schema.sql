-- The shop's own schema, run once in the run's PostgreSQL before any cell (db_init in db.toml).
CREATE TABLE stock (
    item_id  integer PRIMARY KEY,
    quantity integer NOT NULL CHECK (quantity >= 0)
);

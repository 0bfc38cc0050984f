-- Seed data, run after schema.sql (db_seed in db.toml): one stock row per catalog item.
INSERT INTO stock (item_id, quantity) SELECT g, (g * 37) % 500 FROM generate_series(1, 1000) AS g;
ANALYZE stock;

-- The rows each touched slice's new frozen file holds: for a thawed slice (:thawed_slices) its whole frozen part
-- (the frozen rows of the visitors not thawed, kept as they were), and in every slice the rows now before its
-- boundary (next_rows._frozen).
CREATE TEMP TABLE frozen_out AS
SELECT f.* FROM frozen f
WHERE list_contains(:thawed_slices::INTEGER[], f._slice) AND f.anonymous_id NOT IN (SELECT anonymous_id FROM thawed)
UNION ALL
SELECT * EXCLUDE (_frozen) FROM next_rows WHERE _frozen

-- The bucket's new object index: for each source object, the bit masks of the slices holding its rows (slices) and
-- of those holding frozen rows (frozen). Outside the run's touched slices (:touched_mask) the old index stands; in
-- a touched slice the old frozen bits stand unless the slice was thawed (:thawed_mask, its frozen part rewritten),
-- and the run's new hot and frozen rows (index_rows: source_object, _slice, _frozen) add theirs. Objects left
-- with no row anywhere drop out.
WITH fresh AS (
    SELECT source_object,
           bit_or(1::BIGINT << _slice::INTEGER) AS slices,
           coalesce(bit_or(1::BIGINT << _slice::INTEGER) FILTER (WHERE _frozen), 0) AS frozen
    FROM index_rows
    WHERE source_object IS NOT NULL
    GROUP BY source_object
),
merged AS (
    SELECT source_object,
           (coalesce(o.frozen, 0) & ~(:thawed_mask)::BIGINT) | coalesce(f.frozen, 0) AS frozen,
           (coalesce(o.slices, 0) & ~(:touched_mask)::BIGINT) | coalesce(f.slices, 0) AS slices
    FROM state_index o
    FULL OUTER JOIN fresh f USING (source_object)
)
SELECT source_object, slices | frozen AS slices, frozen
FROM merged
WHERE slices | frozen <> 0
ORDER BY source_object

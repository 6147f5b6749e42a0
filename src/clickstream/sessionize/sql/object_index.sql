-- The bucket's new object index (sessionize.state.write_index): for each source object, the bit mask of the slices
-- holding its rows. Outside the run's touched slices (:touched_mask) the old index stands; inside, the new state's
-- rows decide. Objects left with no row anywhere drop out.
WITH fresh AS (
    SELECT source_object, bit_or(1::BIGINT << _slice::INTEGER) AS slices
    FROM new_state
    WHERE source_object IS NOT NULL
    GROUP BY source_object
)
SELECT source_object, slices
FROM (
    SELECT source_object,
           (coalesce(o.slices, 0) & ~(:touched_mask)::BIGINT) | coalesce(f.slices, 0) AS slices
    FROM state_index o
    FULL OUTER JOIN fresh f USING (source_object)
)
WHERE slices <> 0
ORDER BY source_object

-- The source objects this window brings (:objects, the manifest's, and any a new row names): each one's rows in
-- the state become exactly its rows now.
CREATE TEMP TABLE window_objects AS
SELECT DISTINCT source_object
FROM (
    SELECT unnest(:objects::VARCHAR[]) AS source_object
    UNION ALL
    SELECT source_object FROM new_rows
)

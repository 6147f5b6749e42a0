-- The run's affected visitors: those the window brings rows for, those with rows of the window's objects in the
-- state (a visitor who lost rows), and those an earlier attempt of this task named.
CREATE TEMP TABLE affected AS
SELECT anonymous_id FROM new_rows
UNION SELECT s.anonymous_id FROM state s SEMI JOIN window_objects w USING (source_object)
UNION SELECT anonymous_id FROM earlier

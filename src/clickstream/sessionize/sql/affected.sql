-- The run's affected visitors: those the window brings rows for, those with hot rows of the window's objects (a
-- visitor who lost rows), those an earlier attempt of this task named, and every visitor of a slice still in the
-- layout before frozen history (recomputed whole once, as the slice moves to the new layout).
CREATE TEMP TABLE affected AS
SELECT anonymous_id FROM new_rows
UNION SELECT h.anonymous_id FROM hot h SEMI JOIN window_objects w USING (source_object)
UNION SELECT anonymous_id FROM earlier
UNION SELECT h.anonymous_id FROM hot h SEMI JOIN slice_info i ON h._slice = i._slice AND i.legacy

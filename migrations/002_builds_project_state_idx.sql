-- The build page lists a project's earlier SUCCEEDED builds below an id, and the project page
-- its last success. With only builds_project_idx (project_id, id DESC) the planner walks the
-- primary key backwards and filters: for a project with no success below the id, that reads
-- every build (measured 46 ms over 100 000 builds). This index answers it in a few rows.
CREATE INDEX builds_project_state_idx ON builds (project_id, state, id DESC);

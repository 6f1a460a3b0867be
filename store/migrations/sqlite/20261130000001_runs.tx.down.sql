DROP TABLE IF EXISTS installation;
DROP INDEX IF EXISTS triggers_http_path_idx;
DROP TABLE IF EXISTS task_runs;
DROP TABLE IF EXISTS runs;

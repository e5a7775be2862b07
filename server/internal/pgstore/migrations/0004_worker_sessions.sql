-- 0004: which replica holds each worker's session, so that every replica
-- tells a connected worker from one that went away.

-- A worker's session on a replica (the id of its sessions'
-- application_name): written when the session starts, deleted when it
-- ends on that replica. A row whose replica has no session in the
-- database any more is stale (the replica died) and does not count; the
-- leader deletes such rows.
CREATE TABLE worker_sessions (
    cluster_id text PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
    replica    text NOT NULL,
    since      timestamptz NOT NULL
);

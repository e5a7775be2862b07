-- 0003: which replica holds each job, so that replicas sharing the
-- database give back only the jobs of replicas that died.

-- The replica whose worker session holds a dispatched or running job: the
-- id in its connections' application_name ("fleetscan-server ID").
-- NULL while the job waits or after it ended, and for jobs dispatched by a
-- server older than this migration (RecoverOrphans treats them as
-- orphans). RequeueJobs gives back only its own replica's jobs: another
-- replica's session took the job over when the worker reconnected there
-- (ResumeJob).
ALTER TABLE jobs ADD COLUMN owner text;
-- Held jobs by owner, for RecoverOrphans.
CREATE INDEX jobs_owner ON jobs (owner) WHERE state IN (2, 3);

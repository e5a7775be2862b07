package storetest

// Scans and jobs: CreateScan, GetScan, ListScans, GetJob, the queue
// (DispatchPending, RequeueJobs, ResumeJob, RecoverJobs), the ends of a
// job (FailJob, CancelScan, Reap) and StageBatch.

var scanCases = []contractCase{}

var scanClockCases = []clockCase{}

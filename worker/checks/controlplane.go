package checks

var controlPlaneChecks = []*Check{}

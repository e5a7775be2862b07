package checks

var clusterChecks = []*Check{}

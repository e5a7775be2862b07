package checks

var secretChecks = []*Check{}

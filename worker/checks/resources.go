package checks

var resourceChecks = []*Check{}

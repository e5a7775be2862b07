package checks

var namespaceChecks = []*Check{}

package checks

var thirdPartyChecks = []*Check{}

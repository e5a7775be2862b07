package checks_test

import "os"

// checksFS reads the package's own files, such as the embedded bootstrap
// policy, as the tests see them.
var checksFS = os.DirFS(".").(interface{ ReadFile(string) ([]byte, error) })

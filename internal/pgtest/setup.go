package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// account is the user that runs initdb and postgres.
const account = "fleetscan-pgtest"

// binDirEnv names a directory holding initdb and postgres, to use instead
// of Debian's.
const binDirEnv = "FLEETSCAN_PG_BINDIR"

// debianBinGlob is where Debian's postgresql-NN packages put the server's
// programs, which are not on PATH.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// findBinDir returns the directory of initdb and postgres: $FLEETSCAN_PG_BINDIR,
// else the newest of Debian's, else the one of postgres on PATH.
func findBinDir() (string, error) {
	if dir := os.Getenv(binDirEnv); dir != "" {
		if !hasServer(dir) {
			return "", fmt.Errorf("%s=%s has no initdb and postgres", binDirEnv, dir)
		}
		return dir, nil
	}
	dirs, _ := filepath.Glob(debianBinGlob)
	// The newest major version first: /usr/lib/postgresql/NN/bin.
	slices.SortFunc(dirs, func(a, b string) int { return majorOf(b) - majorOf(a) })
	for _, dir := range dirs {
		if hasServer(dir) {
			return dir, nil
		}
	}
	if path, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && hasServer(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	return "", errNoServer
}

var errNoServer = errors.New("PostgreSQL's initdb and postgres were not found (looked in $" + binDirEnv + ", " + debianBinGlob + " and PATH)")

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// binDir finds the server's programs, installing Debian's postgresql
// package with apt-get when they are missing and we are root; otherwise
// it says what to install. Test binaries that install at once take turns
// on a lock file.
func binDir(logf func(string, ...any)) (string, error) {
	dir, err := findBinDir()
	if !errors.Is(err, errNoServer) {
		return dir, err
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: install Debian's package (sudo apt-get install postgresql), set %s to the directory of initdb and postgres, or run the tests as root to let them install it", err, binDirEnv)
	}
	unlock, err := lockSetup()
	if err != nil {
		return "", err
	}
	defer unlock()
	if dir, err := findBinDir(); !errors.Is(err, errNoServer) {
		return dir, err // another test binary installed it
	}
	logf("pgtest: installing Debian's postgresql package for the tests that need a PostgreSQL server")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "postgresql"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dir, err = findBinDir()
	if err != nil {
		return "", fmt.Errorf("apt-get installed postgresql, yet: %w", err)
	}
	return dir, nil
}

// lockSetup takes the lock that test binaries hold while they install the
// package or create the user.
func lockSetup() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "fleetscan-pgtest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// credential returns who runs initdb and postgres: nil (ourselves) unless
// we are root, which postgres refuses; then the fleetscan-pgtest user,
// created if missing. It is a system user without a home or a login
// shell, in a group of its own.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(account)
	if err != nil {
		unlock, err := lockSetup()
		if err != nil {
			return nil, err
		}
		defer unlock()
		if u, err = user.Lookup(account); err != nil {
			cmd := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
				"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
				"--comment", "runs PostgreSQL for fleetscan's tests", account)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("PostgreSQL refuses to run as root, and creating the user %s to run it failed: useradd: %v\n%s", account, err, out)
			}
			if u, err = user.Lookup(account); err != nil {
				return nil, fmt.Errorf("useradd created %s, yet: %w", account, err)
			}
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", account, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", account, u.Gid, err)
	}
	// No supplementary groups: root's would otherwise be kept.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// dirPrefix starts the name of every server's directory in the temporary
// directory.
const dirPrefix = "fleetscan-pgtest-"

// ownerFile, in a server's directory, names the test binary that owns it:
// its pid and its start time in clock ticks since boot (/proc/PID/stat),
// which tell it from a later process that reuses the pid.
const ownerFile = "owner"

// sweepStale removes the server directories under parent whose test
// binary is gone: it was killed before it could stop its server (which
// the kernel then killed) and remove the directory. Directories of
// running test binaries are left alone.
func sweepStale(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, start, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		if now, err := startTime(n); err == nil && now == start {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// ownerLine is the content of ownerFile for this process.
func ownerLine() (string, error) {
	start, err := startTime(os.Getpid())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s\n", os.Getpid(), start), nil
}

// startTime returns the start time of process pid, field 22 of
// /proc/PID/stat, as written there.
func startTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it start with field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	return fields[22-3], nil
}

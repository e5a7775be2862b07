package pgtest

import (
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// process is a child process that dies with the test binary.
type process struct {
	cmd *exec.Cmd
	// done is closed when the process has exited; err is then Wait's.
	done chan struct{}
	err  error
}

// launch starts cmd as cred (nil: as ourselves) with a parent-death
// signal. The kernel sends that signal when the thread that started the
// child ends, not the process, and Go may end a thread: the goroutine that
// starts the child keeps its thread locked until the child has exited,
// and the thread ends with it. The credential is set before the signal
// (syscall sets the user and groups first, and a change of user clears the
// signal), so postgres started as fleetscan-pgtest keeps it.
func launch(cmd *exec.Cmd, cred *syscall.Credential) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// SIGKILL: nothing is left to save when the test binary is gone,
		// and postgres's own children exit when they see the postmaster
		// die.
		Pdeathsig: syscall.SIGKILL,
		// Its own process group, so that a ^C to the test run reaches the
		// test binary, which stops the server in order, and not postgres.
		Setpgid: true,
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, after the
		// child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// signal sends sig to the process unless it has exited.
func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// halt stops postgres at once (an immediate shutdown, which ends its
// children too, so that the data directory can be started again), or
// kills it when that does not end it in time, and waits until it has
// exited.
func (p *process) halt() {
	p.signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
}

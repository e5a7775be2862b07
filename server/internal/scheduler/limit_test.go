package scheduler

import (
	"context"
	"testing"
)

// TestSlotsAreFair: with two slots, clusters that asked while none was
// free get them in the order they asked, and only they are woken.
func TestSlotsAreFair(t *testing.T) {
	s := New(nil, Limits{MaxRunning: 2})
	wake := map[string]<-chan struct{}{}
	for _, id := range []string{"a", "b", "c", "d"} {
		_, w, detach, _ := s.Attach(context.Background(), id)
		defer detach()
		<-w // the wake every new session gets
		wake[id] = w
	}
	if !s.Acquire("a") || !s.Acquire("b") {
		t.Fatal("free slots refused")
	}
	if s.Acquire("c") || s.Acquire("d") {
		t.Fatal("a slot granted beyond the limit")
	}
	s.Release()
	select {
	case <-wake["c"]:
	default:
		t.Fatal("c, first in line, was not woken")
	}
	if s.Acquire("d") {
		t.Error("d jumped the line ahead of c")
	}
	if !s.Acquire("c") {
		t.Error("c refused its turn")
	}
	if s.Running() != 2 {
		t.Errorf("running %d, want 2", s.Running())
	}
	s.Release()
	select {
	case <-wake["d"]:
	default:
		t.Fatal("d was not woken")
	}
}

// TestSlotsSkipGoneClusters: a cluster whose worker left while it waited
// does not keep the line blocked, and two free slots wake two clusters.
func TestSlotsSkipGoneClusters(t *testing.T) {
	s := New(nil, Limits{MaxRunning: 2})
	attach := func(id string) (<-chan struct{}, func()) {
		_, w, detach, _ := s.Attach(context.Background(), id)
		<-w
		return w, detach
	}
	_, detachA := attach("a")
	defer detachA()
	_, detachB := attach("b")
	defer detachB()
	_, detachX := attach("x")
	wy, detachY := attach("y")
	defer detachY()
	wz, detachZ := attach("z")
	defer detachZ()
	if !s.Acquire("a") || !s.Acquire("b") || s.Acquire("x") || s.Acquire("y") || s.Acquire("z") {
		t.Fatal("unexpected grants")
	}
	detachX() // x's worker leaves while first in line
	s.Release()
	s.Release()
	for name, w := range map[string]<-chan struct{}{"y": wy, "z": wz} {
		select {
		case <-w:
		default:
			t.Errorf("%s was not woken with two slots free", name)
		}
	}
	if !s.Acquire("z") || !s.Acquire("y") {
		t.Error("the woken clusters were refused their slots")
	}
}

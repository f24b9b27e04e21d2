//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/larderfs/larder/course"
)

func messageBytes(t *testing.T, status course.Status, msg string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := course.NewWriter(&b)
	if err := w.WriteMessage(status, msg); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return b.Bytes()
}

func TestClassifyLogin(t *testing.T) {
	tests := []struct {
		reply []byte
		err   error
		want  loginOutcome
	}{
		{messageBytes(t, course.StatusInvalidLogin, "Signature hashes do not match for bob."), nil, outcomeWrong},
		{messageBytes(t, course.StatusUserMissing, "Cannot serve non-registered user 'bob'"), nil, outcomeMissing},
		{messageBytes(t, course.StatusOther, "too many failed attempts from this address, retry in 10 s"), nil, outcomeThrottled},
		{messageBytes(t, course.StatusOther, "too many failed attempts, retry in 30 s"), nil, outcomeThrottled},
		{messageBytes(t, course.StatusOther, "server busy: too many password checks in progress, retry later"), nil, outcomePoolBusy},
		{messageBytes(t, course.StatusOther, "server busy: too many connections, retry later"), nil, outcomeConnBusy},
		{messageBytes(t, course.StatusOther, "server is shutting down; retry later"), nil, outcomeOther},
		{messageBytes(t, course.StatusOK, "New user bob registered."), nil, outcomeOther},
		{nil, errors.New("connection reset"), outcomeNoReply},
		{[]byte{1, 2, 3}, nil, outcomeNoReply}, // not a whole reply
	}
	for _, tt := range tests {
		got, msg := classifyLogin(tt.reply, tt.err)
		if got != tt.want {
			t.Errorf("classifyLogin(%q) = %v, want %v", msg, got, tt.want)
		}
	}
}

func TestEnded(t *testing.T) {
	if ended(context.Background()) {
		t.Error("ended(Background) = true, want false")
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	if !ended(ctx) {
		t.Error("ended(past deadline) = false, want true")
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	if ended(ctx) {
		t.Error("ended(an hour left) = true, want false")
	}
	cancel()
	if !ended(ctx) {
		t.Error("ended(cancelled) = false, want true")
	}
}

func TestOutcomeTally(t *testing.T) {
	var a, b outcomeTally
	a.add(outcomeWrong, time.Second, "first")
	a.add(outcomeWrong, 2*time.Second, "second")
	b.add(outcomeCut, time.Second, "cut")
	b.add(outcomeThrottled, time.Millisecond, "refused")
	a.merge(&b)
	if a.n[outcomeWrong] != 2 || a.first[outcomeWrong] != "first" || len(a.lat[outcomeWrong]) != 2 {
		t.Errorf("wrong: n %d, first %q, %d latencies; want 2, \"first\", 2", a.n[outcomeWrong], a.first[outcomeWrong], len(a.lat[outcomeWrong]))
	}
	if got := a.answered(); got != 3 {
		t.Errorf("answered() = %d, want 3 (the cut attempt left out)", got)
	}
}

func TestFloodIP(t *testing.T) {
	for i, want := range map[int]string{0: "127.0.1.0", 255: "127.0.1.255", 256: "127.0.2.0", 513: "127.0.3.1"} {
		if got := floodIP(i).String(); got != want {
			t.Errorf("floodIP(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestChoiceList(t *testing.T) {
	l := choiceList{allowed: []string{"off", "on"}}
	if err := l.Set("on, off"); err != nil || l.String() != "on,off" {
		t.Errorf(`Set("on, off") = %q, %v; want "on,off"`, l.String(), err)
	}
	for _, bad := range []string{"", "maybe", "on,on", "on,"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		}
	}
}

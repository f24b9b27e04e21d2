package main

import (
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The service manager's view of the server, for a systemd unit of
// Type=notify (dist/larder.service): READY once the listeners serve,
// RELOADING and READY around a SIGHUP's reload, STOPPING at shutdown, and
// the watchdog's keep-alive while the listeners are up. Each is a no-op
// without NOTIFY_SOCKET. Debian 12's systemd (252) has no notify-reload,
// so the unit reloads with kill -HUP; MONOTONIC_USEC, which newer ones
// want with RELOADING, is sent anyway.

// notify sends state to the service manager; a failure is logged, never
// fatal: the server serves whether or not systemd hears it.
func notify(logger *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("systemd notification not sent", "state", state, "error", err)
	}
}

func notifyReady(logger *slog.Logger, status string) {
	notify(logger, daemon.SdNotifyReady+"\nSTATUS="+status)
}

func notifyReloading(logger *slog.Logger) {
	notify(logger, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
}

func notifyStopping(logger *slog.Logger) {
	notify(logger, daemon.SdNotifyStopping)
}

// watchdog, if the unit sets WatchdogSec, sends the keep-alive at half the
// interval while alive says the server still listens, until stop is
// closed: a server whose listeners died is restarted by systemd.
func watchdog(logger *slog.Logger, alive func() bool, stop <-chan struct{}) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("systemd watchdog: bad WATCHDOG_USEC", "error", err)
		return
	}
	if every <= 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if alive() {
				notify(logger, daemon.SdNotifyWatchdog)
			}
		case <-stop:
			return
		}
	}
}

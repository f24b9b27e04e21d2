package larder

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// eventJSON is the JSON form of an Event, one flat object that log
// shippers and scripts can read: the ID as a UUID, the time in RFC 3339
// with nanoseconds, the SHA-256 in hex, the duration in nanoseconds. Absent
// fields are left out.
type eventJSON struct {
	ID         string `json:"id"`
	Time       string `json:"time"`
	Kind       string `json:"kind"`
	Server     string `json:"server,omitempty"`
	User       string `json:"user,omitempty"`
	Remote     string `json:"remote,omitempty"`
	Path       string `json:"path,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Status     int    `json:"status,omitempty"`
	DurationNS int64  `json:"duration_ns,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Seq        int64  `json:"seq,omitempty"`
}

// MarshalJSON encodes e as one flat object (see eventJSON).
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{
		ID:         e.ID.String(),
		Time:       e.Time.UTC().Format(time.RFC3339Nano),
		Kind:       string(e.Kind),
		Server:     e.Server,
		User:       e.User,
		Remote:     e.Remote,
		Path:       e.Path,
		Bytes:      e.Bytes,
		Status:     e.Status,
		DurationNS: int64(e.Duration),
		Reason:     e.Reason,
		Seq:        e.Seq,
	}
	if e.HasSHA256() {
		j.SHA256 = hex.EncodeToString(e.SHA256[:])
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	id, err := ParseEventID(j.ID)
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("larder: event time: %w", err)
	}
	*e = Event{
		ID: id, Time: t, Kind: EventKind(j.Kind), Server: j.Server, User: j.User,
		Remote: j.Remote, Path: j.Path, Bytes: j.Bytes, Status: j.Status,
		Duration: time.Duration(j.DurationNS), Reason: j.Reason, Seq: j.Seq,
	}
	if j.SHA256 != "" {
		if n, err := hex.Decode(e.SHA256[:], []byte(j.SHA256)); err != nil || n != 32 {
			return fmt.Errorf("larder: event sha256 %q is not 64 hex digits", j.SHA256)
		}
	}
	return nil
}

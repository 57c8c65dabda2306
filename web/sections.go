package web

import "time"

// The status API's sections about other parts of lvsmon. web defines them
// because they are its JSON contract; the daemon fills them from the
// parts' own types, so no part's internals leak into the API unnoticed.

// RRDStatus is the RRD store's health.
type RRDStatus struct {
	Files        int            `json:"files"`
	LastUpdate   time.Time      `json:"last_update,omitzero"`
	LastDuration time.Duration  `json:"last_duration_ns"`
	Updates      uint64         `json:"updates"`
	Errors       uint64         `json:"errors"` // failed file updates, all time
	Skipped      uint64         `json:"skipped"`
	FailingFiles []RRDFileError `json:"failing_files,omitempty"`
	// Damaged counts the files found damaged and replaced, all time.
	Damaged      uint64           `json:"damaged"`
	DamagedFiles []RRDDamagedFile `json:"damaged_files,omitempty"`
}

// RRDFileError is an RRD file whose updates fail.
type RRDFileError struct {
	Path  string    `json:"path"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
	Count uint64    `json:"count"`
}

// RRDDamagedFile is a damaged RRD file and where it was moved.
type RRDDamagedFile struct {
	Path  string    `json:"path"`
	To    string    `json:"moved_to"`
	Error string    `json:"error"`
	Time  time.Time `json:"time"`
}

// ReconcilerStatus is the IPVS writer's counters.
type ReconcilerStatus struct {
	Rounds        uint64    `json:"rounds"`
	Applied       uint64    `json:"applied_actions"`
	Failed        uint64    `json:"failed_actions"`
	LastRound     time.Time `json:"last_round,omitzero"`
	LastOK        time.Time `json:"last_ok,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	DryRun        bool      `json:"dry_run"`
	Pending       []string  `json:"pending,omitempty"` // dry run: what would be done
}

// AlertingStatus is the mail pipeline's and the outbox's state.
type AlertingStatus struct {
	Pipeline PipelineStatus `json:"pipeline"`
	Outbox   OutboxStatus   `json:"outbox"`
}

// PipelineStatus is what the alerting pipeline read, mailed and held.
type PipelineStatus struct {
	Events        uint64            `json:"events"`
	Mailed        uint64            `json:"mailed"`
	Mails         uint64            `json:"mails"`
	Grouped       uint64            `json:"grouped"`
	Digested      uint64            `json:"digested"`
	Reminders     uint64            `json:"reminders"`
	DailyDigests  uint64            `json:"daily_digests"`
	Suppressed    map[string]uint64 `json:"suppressed"`
	Lost          uint64            `json:"lost"`
	Held          int               `json:"held"`
	Backlog       int               `json:"backlog"`
	Cursor        uint64            `json:"cursor"`
	LastMail      time.Time         `json:"last_mail,omitzero"`
	LastError     string            `json:"last_error,omitempty"`
	LastErrorTime time.Time         `json:"last_error_time,omitzero"`
}

// OutboxStatus is the mail outbox's delivery state.
type OutboxStatus struct {
	Queued        int       `json:"queued"`
	Permanent     int       `json:"permanent"`
	Sent          uint64    `json:"sent"`
	Failed        uint64    `json:"failed"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	LastSentTime  time.Time `json:"last_sent_time,omitzero"`
}

package lvs

import "time"

// Rates are per-second rates over one step. Valid is false on the first
// sample of an object and after a counter reset.
type Rates struct {
	Valid    bool    `json:"valid"`
	Conns    float64 `json:"conns_per_second"`
	InPkts   float64 `json:"in_packets_per_second"`
	OutPkts  float64 `json:"out_packets_per_second"`
	InBytes  float64 `json:"in_bytes_per_second"`
	OutBytes float64 `json:"out_bytes_per_second"`
}

// Snapshot is one sample of the whole table. It is never modified after
// it is published: consumers may keep and read it from any goroutine.
type Snapshot struct {
	Seq      uint64        // 1 for the first sample, +1 per successful sample
	Time     time.Time     // when the read started
	Duration time.Duration // how long the read took
	Elapsed  time.Duration // since the previous sample; 0 on the first
	Table    Table
	// ServiceRates[i] belongs to Table.Services[i]; DestRates[i][j] to
	// Table.Services[i].Dests[j].
	ServiceRates []Rates
	DestRates    [][]Rates
	TotalRates   Rates
}

// CollectorHealth is the collector's view of itself, for the status API and
// self-metrics.
type CollectorHealth struct {
	LastSample     time.Time     `json:"last_sample"`
	LastDuration   time.Duration `json:"last_duration_ns"`
	Samples        uint64        `json:"samples"`
	Errors         uint64        `json:"errors"`
	LastError      string        `json:"last_error,omitempty"`
	LastErrorTime  time.Time     `json:"last_error_time,omitzero"`
	Step           time.Duration `json:"step_ns"`
	ConsecutiveErr uint64        `json:"consecutive_errors"`
}

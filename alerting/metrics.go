package alerting

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports delivery and pipeline counters.
type Metrics struct {
	disp                                            *Dispatcher
	pipe                                            *Pipeline
	sent, failed, queued, perm, lastSent, lastError *prometheus.Desc
	events, suppressed, mails, held                 *prometheus.Desc
}

// NewMetrics exports the dispatcher's and the pipeline's counters.
func NewMetrics(disp *Dispatcher, pipe *Pipeline) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{disp: disp, pipe: pipe,
		sent:       n("lvsmon_alert_mails_sent_total", "Mails the SMTP server accepted since lvsmon started.", nil, nil),
		failed:     n("lvsmon_alert_send_failures_total", "Failed delivery attempts (each retry counts) since lvsmon started.", nil, nil),
		queued:     n("lvsmon_alert_outbox_mails", "Mails in the outbox waiting to be sent (permanent failures included).", nil, nil),
		perm:       n("lvsmon_alert_outbox_permanent_failures", "Mails in the outbox that the server refused for good (5xx); they wait for an operator.", nil, nil),
		lastSent:   n("lvsmon_alert_last_sent_timestamp_seconds", "When the SMTP server last accepted a mail (0: never since start).", nil, nil),
		lastError:  n("lvsmon_alert_last_error_timestamp_seconds", "When a delivery attempt last failed (0: never since start).", nil, nil),
		events:     n("lvsmon_alert_events_total", "Events the alerting pipeline read from the event log.", nil, nil),
		suppressed: n("lvsmon_alert_events_suppressed_total", "Events deliberately not mailed, by reason (kind, service, daemon_state, backup, duplicate, flapping).", []string{"reason"}, nil),
		mails:      n("lvsmon_alert_mails_queued_total", "Mails the pipeline put in the outbox (grouped mails, reminders, digests).", nil, nil),
		held:       n("lvsmon_alert_events_held", "Events waiting in the grouping window or the rate limit's backlog.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (mm *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mm.sent, mm.failed, mm.queued, mm.perm, mm.lastSent, mm.lastError, mm.events, mm.suppressed, mm.mails, mm.held} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (mm *Metrics) Collect(ch chan<- prometheus.Metric) {
	ds, ps := mm.disp.Stats(), mm.pipe.Stats()
	c := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	c(mm.sent, float64(ds.Sent))
	c(mm.failed, float64(ds.Failed))
	g(mm.queued, float64(ds.Queued))
	g(mm.perm, float64(ds.Permanent))
	ts := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}
	g(mm.lastSent, ts(ds.LastSentTime))
	g(mm.lastError, ts(ds.LastErrorTime))
	c(mm.events, float64(ps.Events))
	for _, r := range []string{SuppressedKind, SuppressedService, SuppressedDaemonState,
		SuppressedBackup, SuppressedDuplicate, SuppressedFlapping} {
		c(mm.suppressed, float64(ps.Suppressed[r]), r)
	}
	c(mm.mails, float64(ps.Mails))
	g(mm.held, float64(ps.Held+ps.Backlog))
}

// ChannelMetrics exports the Alertmanager channel's and the webhooks'
// counters. Either source may be nil (the channel is not configured);
// they are read at each scrape, so a reload's new channels show at once.
type ChannelMetrics struct {
	am                                func() *Alertmanager
	hooks                             func() map[string]*Dispatcher
	amSends, amActive, amResolved     *prometheus.Desc
	hookSent, hookFailed, hookQueued  *prometheus.Desc
	hookPerm, hookLastSent, hookLastE *prometheus.Desc
}

// NewChannelMetrics exports the channels am and hooks return.
func NewChannelMetrics(am func() *Alertmanager, hooks func() map[string]*Dispatcher) *ChannelMetrics {
	n := prometheus.NewDesc
	h := []string{"hook"}
	return &ChannelMetrics{am: am, hooks: hooks,
		amSends:      n("lvsmon_alertmanager_sends_total", "Posts of the alert set to an Alertmanager, by result (success, failure), since lvsmon started.", []string{"result"}, nil),
		amActive:     n("lvsmon_alertmanager_alerts_active", "Alerts lvsmon holds firing in the Alertmanager now.", nil, nil),
		amResolved:   n("lvsmon_alertmanager_alerts_resolved", "Resolved alerts lvsmon still sends as resolved (for 15 minutes after they end).", nil, nil),
		hookSent:     n("lvsmon_webhook_deliveries_sent_total", "Webhook deliveries the receiver accepted (2xx) since lvsmon started.", h, nil),
		hookFailed:   n("lvsmon_webhook_send_failures_total", "Failed webhook delivery attempts (each retry counts) since lvsmon started.", h, nil),
		hookQueued:   n("lvsmon_webhook_outbox_deliveries", "Webhook deliveries in the outbox waiting to be sent (permanent failures included).", h, nil),
		hookPerm:     n("lvsmon_webhook_outbox_permanent_failures", "Webhook deliveries the receiver refused for good (4xx); they wait for an operator.", h, nil),
		hookLastSent: n("lvsmon_webhook_last_sent_timestamp_seconds", "When the receiver last accepted a delivery (0: never since start).", h, nil),
		hookLastE:    n("lvsmon_webhook_last_error_timestamp_seconds", "When a delivery attempt last failed (0: never since start).", h, nil),
	}
}

// Describe implements prometheus.Collector.
func (cm *ChannelMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cm.amSends, cm.amActive, cm.amResolved, cm.hookSent, cm.hookFailed, cm.hookQueued, cm.hookPerm, cm.hookLastSent, cm.hookLastE} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (cm *ChannelMetrics) Collect(ch chan<- prometheus.Metric) {
	ts := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}
	if am := cm.am(); am != nil {
		st := am.Stats()
		for _, r := range []string{"success", "failure"} {
			ch <- prometheus.MustNewConstMetric(cm.amSends, prometheus.CounterValue, float64(st.Sends[r]), r)
		}
		ch <- prometheus.MustNewConstMetric(cm.amActive, prometheus.GaugeValue, float64(st.Active))
		ch <- prometheus.MustNewConstMetric(cm.amResolved, prometheus.GaugeValue, float64(st.Resolved))
	}
	for name, d := range cm.hooks() {
		st := d.Stats()
		ch <- prometheus.MustNewConstMetric(cm.hookSent, prometheus.CounterValue, float64(st.Sent), name)
		ch <- prometheus.MustNewConstMetric(cm.hookFailed, prometheus.CounterValue, float64(st.Failed), name)
		ch <- prometheus.MustNewConstMetric(cm.hookQueued, prometheus.GaugeValue, float64(st.Queued), name)
		ch <- prometheus.MustNewConstMetric(cm.hookPerm, prometheus.GaugeValue, float64(st.Permanent), name)
		ch <- prometheus.MustNewConstMetric(cm.hookLastSent, prometheus.GaugeValue, ts(st.LastSentTime), name)
		ch <- prometheus.MustNewConstMetric(cm.hookLastE, prometheus.GaugeValue, ts(st.LastErrorTime), name)
	}
}

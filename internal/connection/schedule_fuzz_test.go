package connection

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzCheckSchedule: whatever the body's schedule, validating it never
// panics, and a cron it accepts is one the scheduler's tick can fire: the
// minute of its next run passes the tick's test (Next of one second before
// that minute is the minute).
func FuzzCheckSchedule(f *testing.F) {
	for _, s := range []string{"*/15 * * * *", "@hourly", "@daily", "0 9 * * 1-5", "TZ=UTC 0 9 * * *", "CRON_TZ=Europe/Paris 30 8 * * *",
		"@every 1h", "@every 1s", "0 0 30 2 *", "60 * * * *", "* * * *", "@reboot", "1-5/0 * * * *", "0 0 1 1 *", "*/7 */5 31 */2 SUN"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		raw, _ := json.Marshal(map[string]string{"cron": expr})
		if errs := checkSchedule(raw); len(errs) > 0 {
			return
		}
		spec, err := ParseCron(expr)
		if err != nil {
			t.Fatalf("%q accepted by the validation but not parsed: %v", expr, err)
		}
		next := spec.Next(now)
		minute := next.Truncate(time.Minute)
		if next.IsZero() || !spec.Next(minute.Add(-time.Second)).Equal(minute) {
			t.Fatalf("%q accepted but the scheduler never fires it (next run %v)", expr, next)
		}
	})
}

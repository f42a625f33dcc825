package connection

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/valetkey/valetkey/internal/apperr"
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a schedule's cron expression: five fields (minute
// resolution) or a descriptor such as @hourly.
func ParseCron(expr string) (cron.Schedule, error) {
	// robfig/cron v3.0.1 slices past the end of a TZ= or CRON_TZ= prefix
	// that no space follows (a panic): refuse it here.
	if (strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=")) && !strings.Contains(expr, " ") {
		return nil, errors.New("cron: a time zone prefix must be followed by a space and the schedule")
	}
	spec, err := cronParser.Parse(expr)
	if err != nil {
		return nil, err
	}
	// The scheduler fires a schedule at the whole minutes it matches. An
	// empty list ("*/15 * * * ,") matches none, and "@every 1h" counts from
	// the time it is asked, so the tick's test never matches: refuse both.
	next := spec.Next(time.Now())
	if next.IsZero() || !spec.Next(next.Add(-time.Second)).Equal(next) {
		return nil, errors.New("cron: the schedule never fires at a whole minute")
	}
	return spec, nil
}

// checkSchedule validates a schedule's cron, if any.
func checkSchedule(raw json.RawMessage) []apperr.FieldError {
	if len(raw) == 0 {
		return nil
	}
	var s struct {
		Cron *string `json:"cron"`
	}
	if json.Unmarshal(raw, &s) != nil || s.Cron == nil {
		return nil
	}
	if _, err := ParseCron(*s.Cron); err != nil {
		return []apperr.FieldError{apperr.Field("value_error", "Field 'cron' must be a cron expression of five fields (minute hour day month weekday) or a descriptor like @hourly", "body", "schedule", "cron")}
	}
	return nil
}

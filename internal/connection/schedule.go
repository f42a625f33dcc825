package connection

import (
	"encoding/json"

	"github.com/robfig/cron/v3"

	"github.com/valetkey/valetkey/internal/apperr"
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a schedule's cron expression: five fields (minute
// resolution) or a descriptor such as @hourly.
func ParseCron(expr string) (cron.Schedule, error) { return cronParser.Parse(expr) }

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

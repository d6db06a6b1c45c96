package vapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ava/console/services"
)

// Setting keys.
const (
	KeyGreeting    = "greeting_message"
	KeyMaxDuration = "max_call_duration"
	KeyVoiceSpeed  = "voice_speed"
)

// Product bounds (the API contract in docs/openapi.json). Vapi itself accepts more.
const (
	GreetingMaxLen     = 1000
	MinCallDuration    = 60
	MaxCallDuration    = 3600
	MinVoiceSpeed      = 0.5
	MaxVoiceSpeed      = 1.2
	defaultMaxDuration = 600 // Vapi's default when the assistant sets none
	defaultVoiceSpeed  = 1.0
)

// Keys lists the settings in display order.
var Keys = []string{KeyGreeting, KeyMaxDuration, KeyVoiceSpeed}

// Setting is one setting as the console shows it.
type Setting struct {
	Key       string
	Label     string
	Value     any // string, int or float64; nil when the assistant cannot have it
	UpdatedAt time.Time
	// Constraint describes the allowed values ("1 to 1000 characters").
	Constraint string
	Min, Max   float64
	// Unsupported explains why the setting cannot be changed (voice provider
	// without a speed control); empty otherwise.
	Unsupported string
	// Display is the value as people read it ("600 seconds", "1.1×");
	// Edit is the value as its form field holds it ("600", "1.1").
	Display string
	Edit    string
	// Multiline settings are edited as text; others as numbers with Step.
	Multiline bool
	Step      string
}

// speedRange is where a voice provider keeps its speed and which values it takes.
type speedRange struct {
	path     []string // inside the voice object
	min, max float64
}

// voiceProviders lists the providers whose speed the console can set.
var voiceProviders = map[string]speedRange{
	"11labs":   {path: []string{"speed"}, min: 0.7, max: 1.2},
	"cartesia": {path: []string{"generationConfig", "speed"}, min: 0.6, max: 1.5},
	"openai":   {path: []string{"speed"}, min: 0.25, max: 4.0},
	"lmnt":     {path: []string{"speed"}, min: 0.25, max: 2.0},
}

// SpeedRange returns the voice speeds allowed for the assistant's voice
// provider: the product's bound intersected with the provider's.
func SpeedRange(voice map[string]any) (lo, hi float64, provider string, ok bool) {
	provider, _ = voice["provider"].(string)
	r, ok := voiceProviders[provider]
	if !ok {
		return 0, 0, provider, false
	}
	return math.Max(MinVoiceSpeed, r.min), math.Min(MaxVoiceSpeed, r.max), provider, true
}

func voiceSpeed(voice map[string]any) (float64, bool) {
	provider, _ := voice["provider"].(string)
	r, ok := voiceProviders[provider]
	if !ok {
		return 0, false
	}
	var cur any = voice
	for _, p := range r.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return defaultVoiceSpeed, true
		}
		cur = m[p]
	}
	if f, ok := cur.(float64); ok {
		return f, true
	}
	return defaultVoiceSpeed, true
}

// withVoiceSpeed returns a copy of the voice object with the new speed (Vapi
// wants the whole voice object in a PATCH).
func withVoiceSpeed(voice map[string]any, speed float64) map[string]any {
	provider, _ := voice["provider"].(string)
	r := voiceProviders[provider]
	out := deepCopy(voice)
	m := out
	for _, p := range r.path[:len(r.path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[r.path[len(r.path)-1]] = speed
	return out
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopy(sub)
		} else {
			out[k] = v
		}
	}
	return out
}

// FromAssistant maps an assistant to the console's settings.
func FromAssistant(a *Assistant) []Setting {
	greeting := ""
	if a.FirstMessage != nil {
		greeting = *a.FirstMessage
	}
	duration := defaultMaxDuration
	if a.MaxDurationSeconds != nil {
		duration = int(math.Round(*a.MaxDurationSeconds))
	}
	speedSetting := Setting{Key: KeyVoiceSpeed, Label: Label(KeyVoiceSpeed), UpdatedAt: a.UpdatedAt}
	if lo, hi, provider, ok := SpeedRange(a.Voice); ok {
		speed, _ := voiceSpeed(a.Voice)
		speedSetting.Value = speed
		speedSetting.Min, speedSetting.Max = lo, hi
		speedSetting.Constraint = fmt.Sprintf("%s to %s (%s voice)", fmtNum(lo), fmtNum(hi), provider)
	} else {
		if provider == "" {
			speedSetting.Unsupported = "The assistant has no voice configured."
		} else {
			speedSetting.Unsupported = fmt.Sprintf("The console cannot set the speed of %s voices.", provider)
		}
	}
	speedSetting.Step = "0.05"
	if speedSetting.Unsupported != "" {
		speedSetting.Display = "Not available"
	} else {
		speedSetting.Edit = fmtNum(speedSetting.Value.(float64))
		speedSetting.Display = speedSetting.Edit + "×"
	}
	return []Setting{
		{
			Key: KeyGreeting, Label: Label(KeyGreeting), Value: greeting, UpdatedAt: a.UpdatedAt, Display: greeting, Edit: greeting, Multiline: true,
			Constraint: fmt.Sprintf("1 to %d characters", GreetingMaxLen), Min: 1, Max: GreetingMaxLen,
		},
		{
			Key: KeyMaxDuration, Label: Label(KeyMaxDuration), Value: duration, UpdatedAt: a.UpdatedAt,
			Display: fmt.Sprintf("%d seconds", duration), Edit: strconv.Itoa(duration), Step: "1",
			Constraint: fmt.Sprintf("%d to %d seconds", MinCallDuration, MaxCallDuration), Min: MinCallDuration, Max: MaxCallDuration,
		},
		speedSetting,
	}
}

func fmtNum(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// Label is a setting's name for people ("Greeting message").
func Label(key string) string {
	switch key {
	case KeyGreeting:
		return "Greeting message"
	case KeyMaxDuration:
		return "Maximum call duration"
	case KeyVoiceSpeed:
		return "Voice speed"
	}
	return key
}

// Allowed says in words which values a setting takes (the product's bounds;
// voice_speed is narrowed further by the assistant's voice provider).
func Allowed(key string) string {
	switch key {
	case KeyGreeting:
		return fmt.Sprintf("a string of 1 to %d characters", GreetingMaxLen)
	case KeyMaxDuration:
		return fmt.Sprintf("a whole number of seconds from %d to %d", MinCallDuration, MaxCallDuration)
	case KeyVoiceSpeed:
		return fmt.Sprintf("a number from %s to %s, within the voice provider's range", fmtNum(MinVoiceSpeed), fmtNum(MaxVoiceSpeed))
	}
	return ""
}

// FormJSON turns a form field into the JSON value ParseValue checks:
// numbers for the numeric settings when they parse, strings otherwise (the
// check then names the expected type).
func FormJSON(key, v string) json.RawMessage {
	if key != KeyGreeting {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			b, _ := json.Marshal(f)
			return b
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// KnownKey reports whether key is a setting; unknown keys are 404s.
func KnownKey(key string) bool {
	for _, k := range Keys {
		if k == key {
			return true
		}
	}
	return false
}

// ParseValue checks a new value against the product's bounds, before any
// call to Vapi: type and range. raw is the JSON value sent by the API or
// the form value's JSON encoding.
func ParseValue(key string, raw json.RawMessage) (any, error) {
	switch key {
	case KeyGreeting:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, services.FieldError(key, "greeting_message must be a string of 1 to %d characters.", GreetingMaxLen)
		}
		if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > GreetingMaxLen {
			return nil, services.FieldError(key, "greeting_message must be 1 to %d characters (got %d).", GreetingMaxLen, utf8.RuneCountInString(s))
		}
		if err := plainText(key, s); err != nil {
			return nil, err
		}
		return s, nil
	case KeyMaxDuration:
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) {
			return nil, services.FieldError(key, "max_call_duration must be a whole number of seconds from %d to %d.", MinCallDuration, MaxCallDuration)
		}
		if f < MinCallDuration || f > MaxCallDuration {
			return nil, services.FieldError(key, "max_call_duration must be from %d to %d seconds (got %s).", MinCallDuration, MaxCallDuration, fmtNum(f))
		}
		return int(f), nil
	case KeyVoiceSpeed:
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, services.FieldError(key, "voice_speed must be a number from %s to %s.", fmtNum(MinVoiceSpeed), fmtNum(MaxVoiceSpeed))
		}
		if f < MinVoiceSpeed || f > MaxVoiceSpeed {
			return nil, services.FieldError(key, "voice_speed must be from %s to %s (got %s).", fmtNum(MinVoiceSpeed), fmtNum(MaxVoiceSpeed), fmtNum(f))
		}
		return f, nil
	}
	return nil, services.Errorf(services.ENOTFOUND, "Unknown setting %q. Settings: %s.", key, strings.Join(Keys, ", "))
}

// plainText refuses what a greeting must not hold: control characters
// (NUL and the other C0 controls but tab, line feed and carriage return
// (a form's line breaks), DEL, C1) and the bidirectional overrides and
// isolates (U+202A-U+202E, U+2066-U+2069), which make text read otherwise
// than it is stored.
func plainText(key, s string) error {
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return services.FieldError(key, "%s must not contain control characters (U+%04X at character %d); line breaks and tabs are fine.", key, r, pos)
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			return services.FieldError(key, "%s must not contain bidirectional override or isolate characters (U+%04X at character %d).", key, r, pos)
		}
	}
	return nil
}

// Patch returns the PATCH body that sets key to value on the assistant,
// after checking the value against the assistant's voice provider. nil
// means the value is already set.
func Patch(a *Assistant, key string, value any) (map[string]any, error) {
	switch key {
	case KeyGreeting:
		if a.FirstMessage != nil && *a.FirstMessage == value.(string) {
			return nil, nil
		}
		return map[string]any{"firstMessage": value}, nil
	case KeyMaxDuration:
		// Compare with the value the console shows (Vapi's default when
		// unset, rounded like FromAssistant does).
		if current(a, key) == value {
			return nil, nil
		}
		return map[string]any{"maxDurationSeconds": value}, nil
	case KeyVoiceSpeed:
		speed := value.(float64)
		lo, hi, provider, ok := SpeedRange(a.Voice)
		if !ok {
			if provider == "" {
				return nil, services.FieldError(key, "voice_speed cannot be set: the assistant has no voice configured.")
			}
			return nil, services.FieldError(key, "voice_speed cannot be set for %s voices.", provider)
		}
		if speed < lo || speed > hi {
			return nil, services.FieldError(key, "voice_speed must be from %s to %s for the assistant's %s voice (got %s).", fmtNum(lo), fmtNum(hi), provider, fmtNum(speed))
		}
		if cur, _ := voiceSpeed(a.Voice); cur == speed {
			return nil, nil
		}
		return map[string]any{"voice": withVoiceSpeed(a.Voice, speed)}, nil
	}
	return nil, services.Errorf(services.ENOTFOUND, "Unknown setting %q.", key)
}

// current is the value FromAssistant shows for key.
func current(a *Assistant, key string) any {
	s, _ := Find(FromAssistant(a), key)
	return s.Value
}

// Find returns the setting with key from a list.
func Find(settings []Setting, key string) (Setting, bool) {
	for _, s := range settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

package vapi_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

func ptr[T any](v T) *T { return &v }

// assistant decodes Vapi's JSON into the client's Assistant, as the wire
// client does.
func assistant(t *testing.T, raw map[string]any) *vapi.Assistant {
	t.Helper()
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var a vapi.Assistant
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

func settingsByKey(t *testing.T, a *vapi.Assistant) map[string]vapi.Setting {
	t.Helper()
	out := map[string]vapi.Setting{}
	list := vapi.FromAssistant(a)
	keys := make([]string, 0, len(list))
	for _, s := range list {
		out[s.Key] = s
		keys = append(keys, s.Key)
	}
	if !reflect.DeepEqual(keys, vapi.Keys) {
		t.Fatalf("settings in order %v, want %v", keys, vapi.Keys)
	}
	return out
}

func TestFromAssistantReadsVapisFields(t *testing.T) {
	raw := vapitest.DefaultAssistant("asst-1")
	raw["firstMessage"] = "Hi, Ava here."
	raw["maxDurationSeconds"] = 900.0
	a := assistant(t, raw)
	s := settingsByKey(t, a)

	want := time.Date(2026, 11, 20, 14, 5, 11, 123e6, time.UTC)
	for _, k := range vapi.Keys {
		if !s[k].UpdatedAt.Equal(want) {
			t.Errorf("%s updated at %v, want the assistant's updatedAt %v", k, s[k].UpdatedAt, want)
		}
		if s[k].Label == "" || s[k].Constraint == "" {
			t.Errorf("%s has no label or constraint: %+v", k, s[k])
		}
	}
	if v := s[vapi.KeyGreeting].Value; v != "Hi, Ava here." {
		t.Errorf("greeting_message = %#v, want firstMessage", v)
	}
	if v := s[vapi.KeyMaxDuration].Value; v != 900 {
		t.Errorf("max_call_duration = %#v, want maxDurationSeconds as an int", v)
	}
	if c := s[vapi.KeyMaxDuration].Constraint; c != "60 to 3600 seconds" {
		t.Errorf("max_call_duration constraint %q", c)
	}
	if c := s[vapi.KeyGreeting].Constraint; c != "1 to 1000 characters" {
		t.Errorf("greeting_message constraint %q", c)
	}
	if v := s[vapi.KeyVoiceSpeed].Value; v != 1.0 {
		t.Errorf("voice_speed = %#v, want voice.speed", v)
	}
}

func TestFromAssistantDefaults(t *testing.T) {
	s := settingsByKey(t, &vapi.Assistant{ID: "a", Voice: map[string]any{"provider": "11labs", "voiceId": "burt"}})
	if v := s[vapi.KeyMaxDuration].Value; v != 600 {
		t.Errorf("max_call_duration without maxDurationSeconds = %#v, want Vapi's default 600", v)
	}
	if v := s[vapi.KeyGreeting].Value; v != "" {
		t.Errorf("greeting_message without firstMessage = %#v, want empty", v)
	}
	if v := s[vapi.KeyVoiceSpeed].Value; v != 1.0 {
		t.Errorf("voice_speed without a speed = %#v, want 1 (the providers' default)", v)
	}
	// Seconds that are not whole are shown rounded.
	s = settingsByKey(t, &vapi.Assistant{ID: "a", MaxDurationSeconds: ptr(599.6)})
	if v := s[vapi.KeyMaxDuration].Value; v != 600 {
		t.Errorf("max_call_duration of 599.6 = %#v, want 600", v)
	}
}

func TestVoiceSpeedByProvider(t *testing.T) {
	tests := []struct {
		name        string
		voice       map[string]any
		value       any
		min, max    float64
		constraint  string
		unsupported string
	}{
		{
			name:  "11labs voice.speed",
			voice: map[string]any{"provider": "11labs", "voiceId": "burt", "speed": 0.9},
			value: 0.9, min: 0.7, max: 1.2, constraint: "0.7 to 1.2 (11labs voice)",
		},
		{
			name:  "cartesia voice.generationConfig.speed",
			voice: map[string]any{"provider": "cartesia", "voiceId": "v", "speed": 0.3, "generationConfig": map[string]any{"speed": 1.1}},
			value: 1.1, min: 0.6, max: 1.2, constraint: "0.6 to 1.2 (cartesia voice)",
		},
		{
			name:  "cartesia without generationConfig",
			voice: map[string]any{"provider": "cartesia", "voiceId": "v"},
			value: 1.0, min: 0.6, max: 1.2,
		},
		{
			name:  "openai voice.speed",
			voice: map[string]any{"provider": "openai", "voiceId": "alloy", "speed": 0.5},
			value: 0.5, min: 0.5, max: 1.2, constraint: "0.5 to 1.2 (openai voice)",
		},
		{
			name:  "lmnt voice.speed",
			voice: map[string]any{"provider": "lmnt", "voiceId": "lily", "speed": 1.2},
			value: 1.2, min: 0.5, max: 1.2, constraint: "0.5 to 1.2 (lmnt voice)",
		},
		{
			name:        "unknown provider",
			voice:       map[string]any{"provider": "azure", "voiceId": "andrew", "speed": 1.0},
			unsupported: "azure",
		},
		{
			name:        "no voice",
			voice:       nil,
			unsupported: "no voice",
		},
		{
			name:        "voice without provider",
			voice:       map[string]any{"voiceId": "x"},
			unsupported: "no voice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settingsByKey(t, &vapi.Assistant{ID: "a", Voice: tt.voice})[vapi.KeyVoiceSpeed]
			if tt.unsupported != "" {
				if s.Value != nil || !strings.Contains(s.Unsupported, tt.unsupported) {
					t.Errorf("value %#v, unsupported %q; want nil and a reason naming %q", s.Value, s.Unsupported, tt.unsupported)
				}
				return
			}
			if s.Unsupported != "" {
				t.Errorf("unsupported %q", s.Unsupported)
			}
			if s.Value != tt.value || s.Min != tt.min || s.Max != tt.max {
				t.Errorf("value %#v in [%v, %v], want %#v in [%v, %v]", s.Value, s.Min, s.Max, tt.value, tt.min, tt.max)
			}
			if tt.constraint != "" && s.Constraint != tt.constraint {
				t.Errorf("constraint %q, want %q", s.Constraint, tt.constraint)
			}
		})
	}
}

func TestParseValue(t *testing.T) {
	long := strings.Repeat("a", 1000)
	tests := []struct {
		name string
		key  string
		raw  string
		want any    // the parsed value when accepted
		says string // else: the message names the field and this
	}{
		{"greeting", vapi.KeyGreeting, `"Hi, Ava here."`, "Hi, Ava here.", ""},
		{"greeting of 1 character", vapi.KeyGreeting, `"H"`, "H", ""},
		{"greeting of 1000 characters", vapi.KeyGreeting, `"` + long + `"`, long, ""},
		{"greeting of 1000 runes, more bytes", vapi.KeyGreeting, `"` + strings.Repeat("é", 1000) + `"`, strings.Repeat("é", 1000), ""},
		{"greeting of 1001 characters", vapi.KeyGreeting, `"` + long + `a"`, nil, "1 to 1000 characters"},
		{"empty greeting", vapi.KeyGreeting, `""`, nil, "1 to 1000 characters"},
		{"blank greeting", vapi.KeyGreeting, `"   "`, nil, "1 to 1000 characters"},
		{"greeting as a number", vapi.KeyGreeting, `42`, nil, "string of 1 to 1000 characters"},
		{"greeting as an object", vapi.KeyGreeting, `{"text":"hi"}`, nil, "string of 1 to 1000 characters"},
		{"greeting null", vapi.KeyGreeting, `null`, nil, "1 to 1000 characters"},
		{"greeting with line breaks and a tab", vapi.KeyGreeting, `"Hi.\r\nAva here.\n\tHow can I help?"`, "Hi.\r\nAva here.\n\tHow can I help?", ""},
		{"greeting with marks and emoji", vapi.KeyGreeting, `"Hola \u200f, \u00e9t\u00e9 \ud83d\udc4b"`, "Hola \u200f, \u00e9t\u00e9 \U0001F44B", ""},
		{"greeting with NUL", vapi.KeyGreeting, `"Hi\u0000there"`, nil, "control characters (U+0000 at character 3)"},
		{"greeting with a bell", vapi.KeyGreeting, `"Hi\u0007"`, nil, "control characters (U+0007"},
		{"greeting with an escape", vapi.KeyGreeting, `"\u001b[31mHi"`, nil, "control characters (U+001B at character 1)"},
		{"greeting with a vertical tab", vapi.KeyGreeting, `"Hi\u000bthere"`, nil, "control characters (U+000B"},
		{"greeting with DEL", vapi.KeyGreeting, `"Hi\u007f"`, nil, "control characters (U+007F"},
		{"greeting with a C1 control", vapi.KeyGreeting, `"Hi\u0085"`, nil, "control characters (U+0085"},
		{"greeting with a right-to-left override", vapi.KeyGreeting, `"Call \u202egnp.exe"`, nil, "bidirectional override or isolate characters (U+202E at character 6)"},
		{"greeting with a left-to-right embedding", vapi.KeyGreeting, `"\u202aHi"`, nil, "bidirectional override or isolate characters (U+202A"},
		{"greeting with an isolate", vapi.KeyGreeting, `"Hi \u2066x\u2069"`, nil, "bidirectional override or isolate characters (U+2066"},
		{"greeting with a pop isolate", vapi.KeyGreeting, `"Hi \u2069"`, nil, "bidirectional override or isolate characters (U+2069"},

		{"duration", vapi.KeyMaxDuration, `900`, 900, ""},
		{"duration at the minimum", vapi.KeyMaxDuration, `60`, 60, ""},
		{"duration at the maximum", vapi.KeyMaxDuration, `3600`, 3600, ""},
		{"duration written as 900.0", vapi.KeyMaxDuration, `900.0`, 900, ""},
		{"duration in exponent form", vapi.KeyMaxDuration, `1e3`, 1000, ""},
		{"duration below the minimum", vapi.KeyMaxDuration, `59`, nil, "60 to 3600"},
		{"duration above the maximum", vapi.KeyMaxDuration, `3601`, nil, "60 to 3600"},
		{"duration zero", vapi.KeyMaxDuration, `0`, nil, "60 to 3600"},
		{"duration negative", vapi.KeyMaxDuration, `-600`, nil, "60 to 3600"},
		{"duration not whole", vapi.KeyMaxDuration, `600.5`, nil, "whole number of seconds from 60 to 3600"},
		{"duration as a string", vapi.KeyMaxDuration, `"600"`, nil, "whole number of seconds from 60 to 3600"},
		{"duration as a boolean", vapi.KeyMaxDuration, `true`, nil, "60 to 3600"},
		{"duration null", vapi.KeyMaxDuration, `null`, nil, "60 to 3600"},

		{"speed", vapi.KeyVoiceSpeed, `1.1`, 1.1, ""},
		{"speed at the minimum", vapi.KeyVoiceSpeed, `0.5`, 0.5, ""},
		{"speed at the maximum", vapi.KeyVoiceSpeed, `1.2`, 1.2, ""},
		{"speed as an integer", vapi.KeyVoiceSpeed, `1`, 1.0, ""},
		{"speed below the minimum", vapi.KeyVoiceSpeed, `0.49`, nil, "0.5 to 1.2"},
		{"speed above the maximum", vapi.KeyVoiceSpeed, `1.21`, nil, "0.5 to 1.2"},
		{"speed 1.3", vapi.KeyVoiceSpeed, `1.3`, nil, "0.5 to 1.2"},
		{"speed as a string", vapi.KeyVoiceSpeed, `"1.0"`, nil, "number from 0.5 to 1.2"},
		{"speed as an array", vapi.KeyVoiceSpeed, `[1]`, nil, "number from 0.5 to 1.2"},
		{"speed null", vapi.KeyVoiceSpeed, `null`, nil, "0.5 to 1.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vapi.ParseValue(tt.key, json.RawMessage(tt.raw))
			if tt.says == "" {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
				}
				return
			}
			var e *services.Error
			if !errors.As(err, &e) || e.Code != services.EINVALID || e.Field != tt.key {
				t.Fatalf("got %#v, %v; want EINVALID about %s", got, err, tt.key)
			}
			if !strings.Contains(e.Message, tt.key) || !strings.Contains(e.Message, tt.says) {
				t.Errorf("message %q: want it to name %s and say %q", e.Message, tt.key, tt.says)
			}
		})
	}
}

func TestParseValueUnknownKey(t *testing.T) {
	for _, key := range []string{"volume", "", "Greeting_Message", "firstMessage"} {
		_, err := vapi.ParseValue(key, json.RawMessage(`1`))
		if services.ErrorCode(err) != services.ENOTFOUND {
			t.Errorf("%q: %v, want ENOTFOUND", key, err)
		}
		if vapi.KnownKey(key) {
			t.Errorf("KnownKey(%q)", key)
		}
	}
	for _, key := range vapi.Keys {
		if !vapi.KnownKey(key) {
			t.Errorf("!KnownKey(%q)", key)
		}
	}
}

func TestPatchGreetingAndDuration(t *testing.T) {
	a := &vapi.Assistant{ID: "a", FirstMessage: ptr("Hello"), MaxDurationSeconds: ptr(600.0)}
	tests := []struct {
		name  string
		a     *vapi.Assistant
		key   string
		value any
		want  map[string]any // nil: nothing to send
	}{
		{"new greeting", a, vapi.KeyGreeting, "Hi", map[string]any{"firstMessage": "Hi"}},
		{"same greeting", a, vapi.KeyGreeting, "Hello", nil},
		{"greeting on an assistant without one", &vapi.Assistant{ID: "a"}, vapi.KeyGreeting, "Hi", map[string]any{"firstMessage": "Hi"}},
		{"new duration", a, vapi.KeyMaxDuration, 900, map[string]any{"maxDurationSeconds": 900}},
		{"same duration", a, vapi.KeyMaxDuration, 600, nil},
		// The console shows Vapi's default (600) when the assistant sets
		// none: saving that same value changes nothing.
		{"default duration", &vapi.Assistant{ID: "a"}, vapi.KeyMaxDuration, 600, nil},
		{"duration on an assistant without one", &vapi.Assistant{ID: "a"}, vapi.KeyMaxDuration, 900, map[string]any{"maxDurationSeconds": 900}},
		// 599.6 is shown as 600: saving 600 changes what Vapi has.
		{"duration Vapi has with a fraction", &vapi.Assistant{ID: "a", MaxDurationSeconds: ptr(599.6)}, vapi.KeyMaxDuration, 599, map[string]any{"maxDurationSeconds": 599}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vapi.Patch(tt.a, tt.key, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("patch %#v, want %#v", got, tt.want)
			}
		})
	}
	if _, err := vapi.Patch(a, "volume", 1); services.ErrorCode(err) != services.ENOTFOUND {
		t.Errorf("unknown key: %v", err)
	}
}

func TestPatchVoiceSpeed(t *testing.T) {
	elevenlabs := func() map[string]any {
		return map[string]any{"provider": "11labs", "voiceId": "burt", "speed": 1.0, "stability": 0.5, "model": "eleven_turbo_v2_5"}
	}
	cartesia := func() map[string]any {
		return map[string]any{"provider": "cartesia", "voiceId": "sonic-1", "generationConfig": map[string]any{"speed": 1.0, "volume": 0.9}}
	}
	tests := []struct {
		name  string
		voice map[string]any
		speed float64
		want  map[string]any // the voice sent; nil: nothing to send
		says  string         // refused: the message says this
	}{
		{"11labs 1.1", elevenlabs(), 1.1,
			map[string]any{"provider": "11labs", "voiceId": "burt", "speed": 1.1, "stability": 0.5, "model": "eleven_turbo_v2_5"}, ""},
		{"11labs at its minimum 0.7", elevenlabs(), 0.7,
			map[string]any{"provider": "11labs", "voiceId": "burt", "speed": 0.7, "stability": 0.5, "model": "eleven_turbo_v2_5"}, ""},
		{"11labs 0.6 (below 11labs' 0.7)", elevenlabs(), 0.6, nil, "0.7 to 1.2 for the assistant's 11labs voice"},
		{"11labs 0.5 (the product's minimum)", elevenlabs(), 0.5, nil, "0.7 to 1.2"},
		{"11labs 1.3", elevenlabs(), 1.3, nil, "0.7 to 1.2"},
		{"11labs unchanged", elevenlabs(), 1.0, nil, ""},
		{"11labs without a speed, set to the default", map[string]any{"provider": "11labs", "voiceId": "burt"}, 1.0, nil, ""},
		{"cartesia 1.2", cartesia(), 1.2,
			map[string]any{"provider": "cartesia", "voiceId": "sonic-1", "generationConfig": map[string]any{"speed": 1.2, "volume": 0.9}}, ""},
		{"cartesia 0.6", cartesia(), 0.6,
			map[string]any{"provider": "cartesia", "voiceId": "sonic-1", "generationConfig": map[string]any{"speed": 0.6, "volume": 0.9}}, ""},
		{"cartesia 0.55 (below cartesia's 0.6)", cartesia(), 0.55, nil, "0.6 to 1.2 for the assistant's cartesia voice"},
		{"cartesia 1.3 (cartesia takes it, the product does not)", cartesia(), 1.3, nil, "0.6 to 1.2"},
		{"cartesia without generationConfig", map[string]any{"provider": "cartesia", "voiceId": "sonic-1"}, 0.8,
			map[string]any{"provider": "cartesia", "voiceId": "sonic-1", "generationConfig": map[string]any{"speed": 0.8}}, ""},
		{"openai 0.5", map[string]any{"provider": "openai", "voiceId": "alloy"}, 0.5,
			map[string]any{"provider": "openai", "voiceId": "alloy", "speed": 0.5}, ""},
		{"openai 1.3", map[string]any{"provider": "openai", "voiceId": "alloy"}, 1.3, nil, "0.5 to 1.2"},
		{"lmnt 1.2", map[string]any{"provider": "lmnt", "voiceId": "lily", "speed": 1.0}, 1.2,
			map[string]any{"provider": "lmnt", "voiceId": "lily", "speed": 1.2}, ""},
		{"lmnt 1.3", map[string]any{"provider": "lmnt", "voiceId": "lily"}, 1.3, nil, "0.5 to 1.2"},
		{"unknown provider", map[string]any{"provider": "azure", "voiceId": "andrew"}, 1.0, nil, "cannot be set for azure voices"},
		{"no voice", nil, 1.0, nil, "no voice configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &vapi.Assistant{ID: "a", Voice: tt.voice}
			before, _ := json.Marshal(tt.voice)
			got, err := vapi.Patch(a, vapi.KeyVoiceSpeed, tt.speed)
			if after, _ := json.Marshal(a.Voice); string(after) != string(before) {
				t.Errorf("Patch changed the assistant's voice: %s, was %s", after, before)
			}
			if tt.says != "" {
				var e *services.Error
				if !errors.As(err, &e) || e.Code != services.EINVALID || e.Field != vapi.KeyVoiceSpeed {
					t.Fatalf("got %#v, %v; want EINVALID about voice_speed", got, err)
				}
				if !strings.Contains(e.Message, "voice_speed") || !strings.Contains(e.Message, tt.says) {
					t.Errorf("message %q, want it to say %q", e.Message, tt.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if got != nil {
					t.Errorf("patch %#v for an unchanged speed, want nil", got)
				}
				return
			}
			if len(got) != 1 || !reflect.DeepEqual(got["voice"], tt.want) {
				t.Errorf("patch %#v,\nwant {voice: %#v}", got, tt.want)
			}
		})
	}
}

func TestSpeedRange(t *testing.T) {
	for provider, want := range map[string][2]float64{
		"11labs": {0.7, 1.2}, "cartesia": {0.6, 1.2}, "openai": {0.5, 1.2}, "lmnt": {0.5, 1.2},
	} {
		lo, hi, p, ok := vapi.SpeedRange(map[string]any{"provider": provider})
		if !ok || p != provider || lo != want[0] || hi != want[1] {
			t.Errorf("%s: [%v, %v] %q %v, want [%v, %v]", provider, lo, hi, p, ok, want[0], want[1])
		}
	}
	if _, _, p, ok := vapi.SpeedRange(map[string]any{"provider": "playht"}); ok || p != "playht" {
		t.Errorf("playht: %q %v", p, ok)
	}
}

func TestFind(t *testing.T) {
	list := vapi.FromAssistant(&vapi.Assistant{ID: "a"})
	if s, ok := vapi.Find(list, vapi.KeyMaxDuration); !ok || s.Key != vapi.KeyMaxDuration {
		t.Errorf("Find: %+v %v", s, ok)
	}
	if _, ok := vapi.Find(list, "volume"); ok {
		t.Error("Find found an unknown key")
	}
}

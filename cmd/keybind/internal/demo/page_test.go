package demo

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keybind/keybind/client"
)

func TestNewPageConfig(t *testing.T) {
	kb := client.New("http://127.0.0.1:1", "k")
	for _, c := range []struct {
		cfg  PageConfig
		want string
	}{
		{PageConfig{}, "Keybind is required"},
		{PageConfig{Keybind: kb, Phones: []Phone{{ID: "a b"}}}, `phone "a b"`},
		{PageConfig{Keybind: kb, Phones: []Phone{{ID: ""}}}, `phone ""`},
		{PageConfig{Keybind: kb, Phones: []Phone{{ID: "x"}}}, "a device"},
	} {
		if _, err := NewPage(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewPage(%+v): %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewPage(PageConfig{Keybind: kb}); err != nil {
		t.Errorf("NewPage without phones: %v", err)
	}
}

func TestParseJSON(t *testing.T) {
	type body struct {
		Username string `json:"username"`
	}
	for in, ok := range map[string]bool{
		`{"username":"a@b"}`:                  true,
		` {"username":"a@b"} `:                true,
		`{}`:                                  true,
		`{"username":"a@b"} {}`:               false,
		`{"username":"a@b"}x`:                 false,
		`{"username":1}`:                      false,
		`{"user":"a@b"}`:                      false,
		`[]`:                                  false,
		``:                                    false,
		`null`:                                true, // decodes to the zero body, which the handlers check
		`{"username":"a@b","username":"c@d"}`: true,
	} {
		var b body
		if err := parseJSON([]byte(in), &b); (err == nil) != ok {
			t.Errorf("parseJSON(%q): %v, want ok=%v", in, err, ok)
		}
	}
}

func TestCheckUsername(t *testing.T) {
	for in, ok := range map[string]bool{
		"alice@demo.test":              true,
		"":                             false,
		"alice":                        false,
		strings.Repeat("a", 257) + "@": false,
	} {
		if err := checkUsername(in); (err == nil) != ok {
			t.Errorf("checkUsername(%q): %v, want ok=%v", in, err, ok)
		}
	}
}

// FuzzParseBody: the body parser of the backend's JSON routes and the
// username check never panic, accept only one JSON object without unknown
// members, and a name they accept holds an "@" and fits the limit.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{`{"username":"alice@demo.test"}`, `{"flow":"x","password":"demo"}`, `{"attempt":"a","decision":"approve","number":42}`,
		`{"username":"a@b"} {}`, `{"username":"\u0000@x"}`, `[1,2]`, `{"number":1e400}`, `{"username":"` + strings.Repeat("é", 200) + `@x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req struct {
			Username string `json:"username"`
			Flow     string `json:"flow"`
			Password string `json:"password"`
			Attempt  string `json:"attempt"`
			Decision string `json:"decision"`
			Number   int    `json:"number"`
		}
		if err := parseJSON(body, &req); err != nil {
			return
		}
		if err := checkUsername(req.Username); err == nil {
			if !strings.Contains(req.Username, "@") || len(req.Username) > maxUPNLen {
				t.Fatalf("checkUsername accepted %q", req.Username)
			}
		}
		if !utf8.ValidString(req.Username) {
			// encoding/json replaces invalid UTF-8: none reaches the server.
			t.Fatalf("invalid UTF-8 came through: %q", req.Username)
		}
	})
}

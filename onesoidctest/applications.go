package onesoidctest

import "net/http"

// DefaultApplications is the application list served until SetApplications: one entry of each
// spelling (snake_case and camelCase).
const DefaultApplications = `[
 {"id":"1","type":"server_oauth2","name":"Accounts","description":"ONES accounts","ipv4":"10.0.0.7","hostname":"accounts.ones.test","client_identifier":"3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b","is_hidden":false},
 {"id":"2","type":"client_kyc","name":"KYC","hostname":"kyc.ones.test:8443","clientIdentifier":"9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4","chainId":5,"contractCheckBalance":"0xabc","isHidden":true}
]`

// SetApplications replaces the raw JSON body of the application list.
func (m *Server) SetApplications(body string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.apps = &body
}

func (m *Server) applications(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "GET required")
		return
	}
	m.mu.Lock()
	body := DefaultApplications
	if m.apps != nil {
		body = *m.apps
	}
	m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}

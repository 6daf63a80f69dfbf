// Package cognito is a local stand-in for the two Amazon Cognito user pool calls NetAuto makes,
// AdminGetUser and AdminListGroupsForUser, speaking Cognito's JSON protocol (POST /, header
// X-Amz-Target AWSCognitoIdentityProviderService.<Operation>, application/x-amz-json-1.1), so the
// real aws-sdk-go-v2 client runs against it. Tests add users and groups, disable or delete users,
// and take it down.
package cognito

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const targetPrefix = "AWSCognitoIdentityProviderService."

// User is an account of the stand-in's pool.
type User struct {
	// Username is the pool's own name of the user (a UUID in a pool whose username attribute is
	// email); Email also finds it, as an alias does in Cognito.
	Username string
	Email    string
	Enabled  bool
	// Status is the UserStatus (default CONFIRMED).
	Status string
	Groups []string
}

// Server is the stand-in: one user pool, PoolID.
type Server struct {
	PoolID string

	mu    sync.Mutex
	users map[string]*User
	down  atomic.Bool
	calls atomic.Int64
}

// New returns a stand-in for user pool poolID.
func New(poolID string) *Server { return &Server{PoolID: poolID, users: map[string]*User{}} }

// Put adds or replaces a user.
func (s *Server) Put(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Status == "" {
		u.Status = "CONFIRMED"
	}
	u.Groups = slices.Clone(u.Groups)
	s.users[u.Username] = &u
}

// SetEnabled enables or disables user name (its username or email).
func (s *Server) SetEnabled(name string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.find(name); u != nil {
		u.Enabled = enabled
	}
}

// SetGroups replaces user name's groups.
func (s *Server) SetGroups(name string, groups ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.find(name); u != nil {
		u.Groups = slices.Clone(groups)
	}
}

// Delete removes user name.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.find(name); u != nil {
		delete(s.users, u.Username)
	}
}

// SetDown makes every call fail with a 500 InternalErrorException (true) or answer again.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Calls counts the calls answered so far, failed ones included.
func (s *Server) Calls() int64 { return s.calls.Load() }

func (s *Server) find(name string) *User {
	if u, ok := s.users[name]; ok {
		return u
	}
	for _, u := range s.users {
		if u.Email != "" && strings.EqualFold(u.Email, name) {
			return u
		}
	}
	return nil
}

// request is the body of both operations.
type request struct {
	UserPoolID string `json:"UserPoolId"`
	Username   string `json:"Username"`
	Limit      int    `json:"Limit"`
	NextToken  string `json:"NextToken"`
}

// ServeHTTP answers the two operations as Cognito does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	switch {
	case r.Method != http.MethodPost || !ok:
		fail(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	case s.down.Load():
		fail(w, http.StatusInternalServerError, "InternalErrorException", "the stand-in is down")
		return
	}
	var in request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "InvalidParameterException", "the body is not JSON")
		return
	}
	if in.UserPoolID != s.PoolID {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", fmt.Sprintf("User pool %s does not exist.", in.UserPoolID))
		return
	}
	s.mu.Lock()
	u := s.find(in.Username)
	var user User
	if u != nil {
		user = *u
		user.Groups = slices.Clone(u.Groups)
	}
	s.mu.Unlock()
	if u == nil {
		fail(w, http.StatusBadRequest, "UserNotFoundException", "User does not exist.")
		return
	}
	switch op {
	case "AdminGetUser":
		attrs := []map[string]string{{"Name": "sub", "Value": user.Username}}
		if user.Email != "" {
			attrs = append(attrs, map[string]string{"Name": "email", "Value": user.Email}, map[string]string{"Name": "email_verified", "Value": "true"})
		}
		answer(w, map[string]any{"Username": user.Username, "Enabled": user.Enabled, "UserStatus": user.Status, "UserAttributes": attrs})
	case "AdminListGroupsForUser":
		s.listGroups(w, in, user)
	default:
		fail(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}

// listGroups answers a page of the user's groups; NextToken is the index of the next group.
func (s *Server) listGroups(w http.ResponseWriter, in request, u User) {
	limit := in.Limit
	if limit <= 0 || limit > 60 {
		limit = 60
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 || n > len(u.Groups) {
			fail(w, http.StatusBadRequest, "InvalidParameterException", "bad NextToken")
			return
		}
		start = n
	}
	end := min(start+limit, len(u.Groups))
	groups := []map[string]string{}
	for _, g := range u.Groups[start:end] {
		groups = append(groups, map[string]string{"GroupName": g, "UserPoolId": s.PoolID})
	}
	out := map[string]any{"Groups": groups}
	if end < len(u.Groups) {
		out["NextToken"] = strconv.Itoa(end)
	}
	answer(w, out)
}

func answer(w http.ResponseWriter, body any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(body)
}

// fail answers an error the way the JSON protocol does: the type in x-amzn-ErrorType and __type.
func fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

package server

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
)

// maxParams bounds the {parameters} of a route's path.
const maxParams = 8

// node is a segment of the route tree: static children by name, at most one
// {parameter} child, and the routes ending here by method.
type node struct {
	static  map[string]*node
	param   *node
	name    string // the parameter's name, on a param node
	methods map[string]*route
	allow   string // the Allow header for 405s
}

// route is a registered Route with its metrics.
type route struct {
	Route
	params   []string
	limiter  *keyLimiter
	requests [600]atomic.Pointer[Counter] // by status
	latency  *Histogram
}

type param struct {
	name  string
	value []byte
}

type router struct {
	root    node
	all     []*route
	byName  map[string]bool
	maxBody int
}

func (rt *router) add(r *route) {
	if !strings.HasPrefix(r.Path, "/") {
		panic(fmt.Sprintf("server: route path %q does not start with /", r.Path))
	}
	n := &rt.root
	for _, seg := range strings.Split(r.Path[1:], "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := seg[1 : len(seg)-1]
			if name == "" {
				panic(fmt.Sprintf("server: route %q has an unnamed parameter", r.Path))
			}
			if n.param == nil {
				n.param = &node{name: name}
			} else if n.param.name != name {
				panic(fmt.Sprintf("server: route %q names parameter %q, another route %q", r.Path, name, n.param.name))
			}
			r.params = append(r.params, name)
			n = n.param
			continue
		}
		if n.static == nil {
			n.static = map[string]*node{}
		}
		c := n.static[seg]
		if c == nil {
			c = &node{}
			n.static[seg] = c
		}
		n = c
	}
	if len(r.params) > maxParams {
		panic(fmt.Sprintf("server: route %q has more than %d parameters", r.Path, maxParams))
	}
	if n.methods == nil {
		n.methods = map[string]*route{}
	}
	if _, dup := n.methods[r.Method]; dup {
		panic(fmt.Sprintf("server: %s %s registered twice", r.Method, r.Path))
	}
	n.methods[r.Method] = r
	var ms []string
	for m := range n.methods {
		ms = append(ms, m)
		if m == "GET" {
			ms = append(ms, "HEAD")
		}
	}
	sort.Strings(ms)
	n.allow = strings.Join(ms, ", ")
	rt.maxBody = max(rt.maxBody, r.BodyLimit)
	rt.all = append(rt.all, r)
}

// lookup finds the route for method and path, filling params. It returns
// the node too, so that a path known under other methods answers 405.
func (rt *router) lookup(method, path []byte, params *[maxParams]param) (*route, *node, int) {
	if len(path) == 0 || path[0] != '/' {
		return nil, nil, 0
	}
	n := &rt.root
	np := 0
	rest := path[1:]
	for {
		i := 0
		for i < len(rest) && rest[i] != '/' {
			i++
		}
		seg := rest[:i]
		if c, ok := n.static[string(seg)]; ok {
			n = c
		} else if n.param != nil && len(seg) > 0 {
			n = n.param
			params[np] = param{name: n.name, value: seg}
			np++
		} else {
			return nil, nil, 0
		}
		if i == len(rest) {
			break
		}
		rest = rest[i+1:]
	}
	if n.methods == nil {
		return nil, nil, 0
	}
	r := n.methods[string(method)]
	if r == nil && string(method) == "HEAD" {
		r = n.methods["GET"]
	}
	return r, n, np
}

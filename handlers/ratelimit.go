package handlers

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// localBudgets holds the standing of every budget a request was counted
// against (a route's, sign-in's).
const localBudgets = "ava.ratelimit"

// The rate-limit headers.
const (
	headerRateLimit  = "X-RateLimit-Limit"
	headerRemaining  = "X-RateLimit-Remaining"
	headerResetAfter = "X-RateLimit-Reset"
)

// budgetState is one budget's standing after counting the request: its
// limit, the requests left, and the seconds until it is whole again (for
// a refusal, until one more request is allowed).
type budgetState struct {
	limit, remaining, reset int
	refused                 bool
}

// budgets are the standings of every budget a request was counted against.
type budgets struct {
	states []budgetState
}

func budgetsOf(c *fiber.Ctx) *budgets {
	if b, ok := c.Locals(localBudgets).(*budgets); ok {
		return b
	}
	b := &budgets{}
	c.Locals(localBudgets, b)
	return b
}

// noteBudget records a budget's standing once the request was counted
// against it, then writes the headers of the tightest budget the request
// was counted against so far: a route's loose budget must not hide
// sign-in's tight one, and a refusal (429) carries the refusing budget's.
// The innermost limiter writes last, with every standing known.
func noteBudget(c *fiber.Ctx, state budgetState) {
	b := budgetsOf(c)
	b.states = append(b.states, state)
	tight := b.states[0]
	for _, s := range b.states[1:] {
		if tighter(s, tight) {
			tight = s
		}
	}
	c.Set(headerRateLimit, strconv.Itoa(tight.limit))
	c.Set(headerRemaining, strconv.Itoa(tight.remaining))
	c.Set(headerResetAfter, strconv.Itoa(tight.reset))
}

// tighter reports whether a binds the caller sooner than b: a refusal first,
// then the fewer requests left, then the longer wait.
func tighter(a, b budgetState) bool {
	if a.refused != b.refused {
		return a.refused
	}
	if a.remaining != b.remaining {
		return a.remaining < b.remaining
	}
	return a.reset > b.reset
}

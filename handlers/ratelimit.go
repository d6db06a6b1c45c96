package handlers

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// localBudgets holds the standing of every budget a request was counted
// against (a route's, sign-in's).
const localBudgets = "ava.ratelimit"

// The rate-limit headers fiber's limiter writes.
const (
	headerRateLimit  = "X-RateLimit-Limit"
	headerRemaining  = "X-RateLimit-Remaining"
	headerResetAfter = "X-RateLimit-Reset"
)

// budgetState is one budget's standing after counting the request.
type budgetState struct {
	limit, remaining, reset int
	refused                 bool
}

type budgets struct {
	states []budgetState
	// refusedBy is the budget that refused the request, if one did.
	refusedBy string
}

func budgetsOf(c *fiber.Ctx) *budgets {
	if b, ok := c.Locals(localBudgets).(*budgets); ok {
		return b
	}
	b := &budgets{}
	c.Locals(localBudgets, b)
	return b
}

// noteRefusal records that budget refused the request: nothing is left of
// it until reset seconds have passed.
func noteRefusal(c *fiber.Ctx, budget string, limit, reset int) {
	b := budgetsOf(c)
	b.states = append(b.states, budgetState{limit: limit, remaining: 0, reset: reset, refused: true})
	b.refusedBy = budget
}

// noteBudget records the standing of budget once its limiter has run (from
// the headers it has just written when it let the request through), then
// writes the headers of the tightest budget the request was counted
// against: fiber's limiters each overwrite the headers, the outermost last,
// so a route's loose budget would hide sign-in's tight one, and a refusal
// (429) would carry none or the wrong one.
func noteBudget(c *fiber.Ctx, budget string) {
	b := budgetsOf(c)
	if b.refusedBy != budget {
		limit, err1 := strconv.Atoi(c.GetRespHeader(headerRateLimit))
		remaining, err2 := strconv.Atoi(c.GetRespHeader(headerRemaining))
		reset, err3 := strconv.Atoi(c.GetRespHeader(headerResetAfter))
		if err1 != nil || err2 != nil || err3 != nil {
			return
		}
		b.states = append(b.states, budgetState{limit: limit, remaining: max(remaining, 0), reset: reset})
	}
	if len(b.states) == 0 {
		return
	}
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

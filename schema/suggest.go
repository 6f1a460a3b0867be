package schema

import (
	"strings"
	"unicode/utf8"
)

// maxSuggestLen bounds the words suggest compares: no name in a manifest is
// longer, and edit distance costs the product of the two lengths.
const maxSuggestLen = 64

// suggest returns the candidate closest to s when it is close enough to be a
// likely typo (edit distance at most a third of the word, at least 1), or "".
// Case differences alone always match. Among equally close candidates the
// first wins.
func suggest(s string, candidates []string) string {
	n := utf8.RuneCountInString(s)
	if n > maxSuggestLen {
		return ""
	}
	ls := strings.ToLower(s)
	limit := max(1, len(s)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if lc == ls {
			return c
		}
		m := utf8.RuneCountInString(c)
		if m > maxSuggestLen || abs(m-n) >= bestDist {
			continue // the distance is at least the difference in length
		}
		if dist := levenshtein(ls, lc); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

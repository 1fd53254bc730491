package workload

import (
	"math/rand/v2"
	"strings"
)

// Vocabulary in the style of Pagila's own film descriptions.
var (
	descAdjectives = []string{"Amazing", "Astounding", "Awe-Inspiring", "Beautiful", "Boring", "Brilliant",
		"Emotional", "Epic", "Fanciful", "Fast-Paced", "Insightful", "Intrepid", "Lacklusture", "Touching",
		"Stunning", "Thoughtful", "Unbelieveable", "Taut", "Action-Packed", "Charming", "Daring", "Beautiful"}
	descGenres = []string{"Documentary", "Drama", "Reflection", "Saga", "Story", "Tale", "Yarn", "Panorama",
		"Display", "Character Study", "Epistle", "Mystery"}
	descNouns = []string{"Astronaut", "Boat", "Boy", "Car", "Cat", "Crocodile", "Database Administrator",
		"Dentist", "Dog", "Explorer", "Feminist", "Frisbee", "Girl", "Hunter", "Husband", "Lumberjack",
		"Mad Cow", "Mad Scientist", "Man", "Moose", "Monkey", "Pastry Chef", "Pioneer", "Robot", "Student",
		"Squirrel", "Sumo Wrestler", "Teacher", "Technical Writer", "Waitress", "Woman", "Composer"}
	descVerbs = []string{"Battle", "Build", "Chase", "Conquer", "Defeat", "Discover", "Escape", "Face",
		"Find", "Fight", "Kill", "Meet", "Outgun", "Outrace", "Overcome", "Pursue", "Reach", "Redeem",
		"Sink", "Succumb", "Vanquish"}
	descPlaces = []string{"A Baloon", "A Jet Boat", "A Manhattan Penthouse", "A Monastery", "A Shark Tank",
		"Ancient China", "Ancient India", "Berlin", "California", "Nigeria", "Soviet Georgia",
		"The Canadian Rockies", "The First Manned Space Station", "The Gulf of Mexico", "The Outback",
		"The Sahara Desert", "A U-Boat", "An Abandoned Fun House", "An Abandoned Mine Shaft"}
	firstNames = []string{"MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "JENNIFER", "MARIA", "SUSAN",
		"JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "CHARLES", "AMIR", "LIN", "OLGA",
		"KENJI", "FATIMA", "JOSÉ", "ZOË", "BJÖRN"}
	lastNames = []string{"SMITH", "JOHNSON", "WILLIAMS", "JONES", "BROWN", "DAVIS", "MILLER", "WILSON",
		"MOORE", "TAYLOR", "ANDERSON", "THOMAS", "GARCÍA", "NGUYEN", "O'BRIEN", "MÜLLER", "KOWALSKI", "SATO"}
	streets = []string{"Main Street", "Oak Avenue", "Pine Lane", "Maple Drive", "Cedar Road", "Elm Boulevard",
		"Lakeview Parkway", "Hillcrest Way"}
	districts = []string{"Alberta", "QLD", "California", "Buenos Aires", "Nordrhein-Westfalen", "Tokyo-to",
		"Gujarat", "Île-de-France", "Ontario"}
	specialFeatures = []string{"Trailers", "Commentaries", "Deleted Scenes", "Behind the Scenes"}
	ratings         = []string{"G", "PG", "PG-13", "R", "NC-17"}
	emailDomains    = []string{"sakilacustomer.org", "example.com", "mail.example.org"}
)

const codeChars = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// longDescription returns a Pagila-style description of at least minBytes
// bytes. Each sentence carries a random reel code, so the text does not
// compress below PostgreSQL's TOAST threshold and is stored out of line.
func longDescription(rng *rand.Rand, minBytes int) string {
	var b strings.Builder
	b.Grow(minBytes + 200)
	for b.Len() < minBytes {
		b.WriteString("A ")
		b.WriteString(pick(rng, descAdjectives))
		b.WriteByte(' ')
		b.WriteString(pick(rng, descGenres))
		b.WriteString(" of a ")
		b.WriteString(pick(rng, descNouns))
		b.WriteString(" And a ")
		b.WriteString(pick(rng, descNouns))
		b.WriteString(" who must ")
		b.WriteString(pick(rng, descVerbs))
		b.WriteString(" a ")
		b.WriteString(pick(rng, descNouns))
		b.WriteString(" in ")
		b.WriteString(pick(rng, descPlaces))
		b.WriteString(" (reel ")
		for range 10 {
			b.WriteByte(codeChars[rng.IntN(len(codeChars))])
		}
		b.WriteString("). ")
	}
	return b.String()
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

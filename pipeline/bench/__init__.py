"""`pipe bench`: how fast this box runs its models, measured the way home-lab users chart
it (the librarian explains an antibiotics paragraph: "biotics"; the librarian draws its own
portrait: "/sd you"), kept in the state database and drawn as a chart."""

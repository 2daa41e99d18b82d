"""Bottom layer: deadlines, secrets, time parsing, the fair pool and the API's object types; imports nothing above."""

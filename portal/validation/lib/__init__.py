"""Pure helpers of validation studies (no Django import): cell matching and validator assignment."""

package main

// knownEnrolled reports whether user on server is in the configuration
// folder's list of accounts enrolled for the channel-bound login. A list
// that cannot be read counts as empty: larder then asks the server once
// more than it needs to.
func knownEnrolled(env *Env, server, user string) bool {
	conf, err := config(env)
	if err != nil {
		return false
	}
	ok, err := conf.Enrolled().Lookup(server, user)
	return ok && err == nil
}

// rememberEnrolled adds user on server to that list.
func rememberEnrolled(env *Env, server, user string) error {
	conf, err := config(env)
	if err != nil {
		return err
	}
	return conf.Enrolled().Record(server, user)
}

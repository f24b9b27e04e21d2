package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

func runCompletion(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: larder completion bash|zsh|fish\n\n"+
			"Prints the script that completes larder's commands, flags, and remote names\n"+
			"(NAME: for the commands that take paths on the server) in that shell. Made\n"+
			"from the program's own table of commands, so it always matches it.\n"+
			"\n"+
			"  bash:  larder completion bash > ~/.local/share/bash-completion/completions/larder\n"+
			"         (or: source <(larder completion bash) in ~/.bashrc)\n"+
			"  zsh:   larder completion zsh > \"${fpath[1]}/_larder\"  (then: compinit)\n"+
			"  fish:  larder completion fish > ~/.config/fish/completions/larder.fish\n")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("completion takes one shell: bash, zsh or fish")
	}
	specs, err := describeAll(ctx)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	switch pos[0] {
	case "bash":
		bashCompletion(&b, specs)
	case "zsh":
		zshCompletion(&b, specs)
	case "fish":
		fishCompletion(&b, specs)
	default:
		return usageError("completion: unknown shell %q: want bash, zsh or fish", pos[0])
	}
	_, err = env.Stdout.Write(b.Bytes())
	return err
}

// shellWords returns the names of specs, separated by spaces.
func shellWords(specs []*cmdSpec) string {
	var names []string
	for _, s := range specs {
		names = append(names, s.path[len(s.path)-1])
	}
	return strings.Join(names, " ")
}

// flagWords returns the spellings of s's flags, those that take a value
// if valued, else all; separated by spaces.
func flagWords(s *cmdSpec, valued bool) string {
	var words []string
	for _, f := range s.flags {
		if !valued || takesValue(f) {
			words = append(words, flagSpelling(f))
		}
	}
	return strings.Join(words, " ")
}

// completionData writes the shell functions, valid in bash and zsh, that
// the scripts of both share: _larder_subs PATH (a group's commands),
// _larder_flags PATH, _larder_valued PATH (the flags that take a value)
// and _larder_remote PATH (true for the commands of paths on the server).
func completionData(w io.Writer, specs []*cmdSpec) {
	fmt.Fprintf(w, "_larder_subs() {\n\tcase \"$1\" in\n\t\"\") echo %q ;;\n", shellWords(specs))
	walkSpecs(specs, func(s *cmdSpec) {
		if len(s.subs) > 0 {
			fmt.Fprintf(w, "\t%q) echo %q ;;\n", s.name(), shellWords(s.subs))
		}
	})
	fmt.Fprint(w, "\tesac\n}\n\n_larder_flags() {\n\tcase \"$1\" in\n")
	walkSpecs(specs, func(s *cmdSpec) {
		if len(s.flags) > 0 {
			fmt.Fprintf(w, "\t%q) echo %q ;;\n", s.name(), flagWords(s, false))
		}
	})
	fmt.Fprint(w, "\tesac\n}\n\n_larder_valued() {\n\tcase \"$1\" in\n")
	walkSpecs(specs, func(s *cmdSpec) {
		if v := flagWords(s, true); v != "" {
			fmt.Fprintf(w, "\t%q) echo %q ;;\n", s.name(), v)
		}
	})
	fmt.Fprint(w, "\tesac\n}\n\n_larder_remote() {\n\tcase \"$1\" in\n")
	var remote []string
	walkSpecs(specs, func(s *cmdSpec) {
		if s.remotePaths() {
			remote = append(remote, fmt.Sprintf("%q", s.name()))
		}
	})
	fmt.Fprintf(w, "\t%s) return 0 ;;\n\tesac\n\treturn 1\n}\n\n", strings.Join(remote, "|"))
	// The command path of the words before the cursor: the group and
	// command names, skipping flags and the values of those that take one.
	fmt.Fprint(w, `_larder_path() {
	local w prev="" p=""
	for w in "$@"; do
		case "$w" in
		-*) prev=$w; continue ;;
		esac
		if [[ -n $prev && " $(_larder_valued "$p") " == *" $prev "* && $prev != *=* ]]; then
			prev=""
			continue
		fi
		prev=""
		if [[ " $(_larder_subs "$p") " == *" $w "* ]]; then
			p=${p:+$p }$w
		else
			break
		fi
	done
	echo "$p"
}

`)
}

// bashCompletion writes the bash script.
func bashCompletion(w io.Writer, specs []*cmdSpec) {
	fmt.Fprint(w, "# bash completion for larder; made by 'larder completion bash'.\n\n")
	completionData(w, specs)
	fmt.Fprint(w, `_larder() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} p subs r
	p=$(_larder_path "${COMP_WORDS[@]:1:COMP_CWORD-1}")
	COMPREPLY=()
	if [[ $COMP_CWORD -gt 1 && $prev == -* && " $(_larder_valued "$p") " == *" $prev "* ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_larder_flags "$p")" -- "$cur"))
		return
	fi
	subs=$(_larder_subs "$p")
	if [[ -n $subs ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		return
	fi
	# bash cuts "work:docs" at the ':' (COMP_WORDBREAKS): a path on the
	# server, which is not completed.
	if [[ $cur == : || $prev == : ]]; then
		compopt +o default 2>/dev/null # not this machine's files either
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
	if _larder_remote "$p" && [[ $cur != */* && $cur != *:* ]]; then
		for r in $(command larder remote list --names 2>/dev/null); do
			if [[ $r: == "$cur"* ]]; then
				COMPREPLY+=("$r:")
				compopt -o nospace 2>/dev/null
			fi
		done
	fi
}
complete -o default -F _larder larder
`)
}

// zshCompletion writes the zsh script.
func zshCompletion(w io.Writer, specs []*cmdSpec) {
	fmt.Fprint(w, "#compdef larder\n# zsh completion for larder; made by 'larder completion zsh'.\n\n")
	completionData(w, specs)
	// The summaries of a group's commands, for _describe.
	fmt.Fprint(w, "_larder_described() {\n\tcase \"$1\" in\n")
	describeGroup := func(name string, subs []*cmdSpec) {
		var lines []string
		for _, s := range subs {
			lines = append(lines, zshQuote(strings.ReplaceAll(s.path[len(s.path)-1], ":", `\:`)+":"+s.summary))
		}
		fmt.Fprintf(w, "\t%q) reply=(%s) ;;\n", name, strings.Join(lines, " "))
	}
	describeGroup("", specs)
	walkSpecs(specs, func(s *cmdSpec) {
		if len(s.subs) > 0 {
			describeGroup(s.name(), s.subs)
		}
	})
	fmt.Fprint(w, `	*) reply=() ;;
	esac
}

_larder() {
	local cur=${words[CURRENT]} prev=${words[CURRENT-1]} p
	local -a reply remotes
	p=$(_larder_path "${(@)words[2,CURRENT-1]}")
	if (( CURRENT > 2 )) && [[ $prev == -* && " $(_larder_valued "$p") " == *" $prev "* ]]; then
		_files
		return
	fi
	if [[ $cur == -* ]]; then
		compadd -- ${=$(_larder_flags "$p")}
		return
	fi
	_larder_described "$p"
	if (( ${#reply} )); then
		_describe -t commands 'larder command' reply
		return
	fi
	if _larder_remote "$p" && [[ $cur != */* && $cur != *:* ]]; then
		remotes=(${(f)"$(command larder remote list --names 2>/dev/null)"})
		(( ${#remotes} )) && compadd -S '' -- ${^remotes}:
	fi
	_files
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_larder "$@"
else
	compdef _larder larder
fi
`)
}

// zshQuote quotes s for zsh between single quotes.
func zshQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fishCompletion writes the fish script.
func fishCompletion(w io.Writer, specs []*cmdSpec) {
	fmt.Fprint(w, "# fish completion for larder; made by 'larder completion fish'.\n\n")
	fmt.Fprint(w, "function __larder_subs\n\tswitch \"$argv[1]\"\n")
	fmt.Fprintf(w, "\t\tcase ''\n\t\t\tstring split ' ' -- %s\n", fishQuote(shellWords(specs)))
	walkSpecs(specs, func(s *cmdSpec) {
		if len(s.subs) > 0 {
			fmt.Fprintf(w, "\t\tcase %s\n\t\t\tstring split ' ' -- %s\n", fishQuote(s.name()), fishQuote(shellWords(s.subs)))
		}
	})
	fmt.Fprint(w, "\tend\nend\n\nfunction __larder_valued\n\tswitch \"$argv[1]\"\n")
	walkSpecs(specs, func(s *cmdSpec) {
		if v := flagWords(s, true); v != "" {
			fmt.Fprintf(w, "\t\tcase %s\n\t\t\tstring split ' ' -- %s\n", fishQuote(s.name()), fishQuote(v))
		}
	})
	fmt.Fprint(w, `	end
end

# The command path of the words before the cursor, as _larder_path does
# for bash and zsh.
function __larder_path
	set -l words (commandline -opc)
	set -e words[1]
	set -l p ''
	set -l prev ''
	for w in $words
		if string match -q -- '-*' $w
			set prev $w
			continue
		end
		if test -n "$prev"; and contains -- $prev (__larder_valued "$p")
			set prev ''
			continue
		end
		set prev ''
		if contains -- $w (__larder_subs "$p")
			set p (string trim -- "$p $w")
		else
			break
		end
	end
	echo $p
end

function __larder_at
	test (__larder_path | string collect) = "$argv[1]"
end

function __larder_remotes
	for r in (command larder remote list --names 2>/dev/null)
		echo $r:
	end
end

complete -c larder -f
`)
	var complete func(s *cmdSpec, parent string)
	complete = func(s *cmdSpec, parent string) {
		fmt.Fprintf(w, "complete -c larder -n %s -a %s -d %s\n",
			fishQuote("__larder_at "+fishQuote(parent)), fishQuote(s.path[len(s.path)-1]), fishQuote(s.summary))
		cond := fishQuote("__larder_at " + fishQuote(s.name()))
		for _, f := range s.flags {
			opt := "-l " + f.Name
			if len(f.Name) == 1 {
				opt = "-s " + f.Name
			}
			extra := ""
			if takesValue(f) {
				extra = " -r -F"
			}
			fmt.Fprintf(w, "complete -c larder -n %s %s%s -d %s\n", cond, opt, extra, fishQuote(flagSummary(f)))
		}
		if s.remotePaths() {
			fmt.Fprintf(w, "complete -c larder -n %s -F -a '(__larder_remotes)'\n", cond)
		}
		for _, sub := range s.subs {
			complete(sub, s.name())
		}
	}
	for _, s := range specs {
		complete(s, "")
	}
}

// fishQuote quotes s for fish between single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

# cmd/completion/coblk.bash - bash completion for coblk (installed as bash-completion's completions/coblk).
#
# Nothing here lists a command or an option: they are read from the binary
# being completed (`coblk --help`, `coblk COMMAND --help`) and kept for the
# shell's life, so the completion cannot drift from the program. What an
# option's value completes to follows from its help line:
#   value FILE or PATH   file names (-f, --backing)
#   value DIR            directory names (--config-dir)
#   value ID             the ids of the ublk devices that exist (-n; not for add)
#   value COLUMNS        the column names the help lists, comma-separated (stats -o)
#   "a | b | c" or "a|b|c" in the help
#                        those words, less placeholders in capitals (-t, --algorithm,
#                        --block-size); an option whose value has the same name as
#                        one with such a list gets that list (--recompress ALG)

declare -gA _coblk_help_cache=()
# Where the ublk char devices (ublkcN) are listed: sysfs, and /dev where
# sysfs has none.
declare -ga _coblk_device_dirs=(/sys/class/ublk-char /dev)

# _coblk_help BIN [COMMAND]: prints `BIN [COMMAND] --help`, run once per shell.
_coblk_help() {
  local key="$1|${2-}"
  if [[ -z ${_coblk_help_cache[$key]+set} ]]; then
    _coblk_help_cache[$key]=$("$1" ${2:+"$2"} --help 2>/dev/null)
  fi
  printf '%s\n' "${_coblk_help_cache[$key]}"
}

# _coblk_commands BIN: the commands `BIN --help` lists.
_coblk_commands() {
  _coblk_help "$1" | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }'
}

# _coblk_options BIN COMMAND: one line per option, NAMES, VALUE and HELP
# separated by \x1f (not a tab: as IFS, tabs would merge an empty VALUE
# away): NAMES its spellings ("-n --number"), VALUE the name of its value
# ("" for a flag), HELP its help text, continuation lines joined.
_coblk_options() {
  _coblk_help "$1" "$2" | awk '
    function flush() { if (names != "") print names "\037" value "\037" help; names = "" }
    /^  -/ {
      flush()
      line = $0; sub(/^  /, "", line); sub(/ +$/, "", line)
      # "-n [ --number ] ID  help" or "--json  help"; a long option fills
      # the column and leaves one space before its help.
      if (!match(line, /^(-[A-Za-z] \[ --[A-Za-z0-9-]+ \]|--[A-Za-z0-9-]+)/)) next
      spec = substr(line, 1, RLENGTH); help = substr(line, RLENGTH + 1)
      value = ""
      if (help !~ /^  / && match(help, /^ [A-Z][A-Z0-9:_-]*( |$)/)) {
        value = substr(help, 2, RLENGTH - 1); sub(/ $/, "", value); help = substr(help, RLENGTH + 1)
      }
      sub(/^ +/, "", help)
      gsub(/[][]/, "", spec); gsub(/  +/, " ", spec); sub(/ $/, "", spec)
      names = spec
      next
    }
    names != "" && /^    / { line = $0; sub(/^ +/, "", line); help = help " " line; next }
    { flush() }
    END { flush() }'
}

# _coblk_choices HELP: the words of an "a | b | c" or "a|b|c" list in HELP,
# placeholders (words with capitals) left out.
_coblk_choices() {
  grep -oE '[A-Za-z0-9_.:-]+( ?\| ?[A-Za-z0-9_.:-]+)+' <<<"$1" | head -n 1 | tr -d ' ' | tr '|' '\n' |
    grep -vE '[A-Z]'
}

# _coblk_device_ids: the ids of the ublk devices that exist.
_coblk_device_ids() {
  local dir path
  for dir in "${_coblk_device_dirs[@]}"; do
    for path in "$dir"/ublkc*; do
      [[ -e "$path" && "${path##*/ublkc}" =~ ^[0-9]+$ ]] && printf '%s\n' "${path##*/ublkc}"
    done
  done | sort -un
}

# _coblk_values BIN COMMAND OPTION CUR: sets COMPREPLY to OPTION's values.
_coblk_values() {
  local bin=$1 command=$2 option=$3 cur=$4 names value help kind="" text="" choices=""
  while IFS=$'\x1f' read -r names value help; do
    if [[ " $names " == *" $option "* ]]; then
      kind=$value
      text=$help
      break
    fi
  done < <(_coblk_options "$bin" "$command")
  case "$kind" in
    FILE | PATH)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return
      ;;
    DIR)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return
      ;;
    ID)
      # `add -n` names a new device: the existing ids are the wrong answers.
      [[ "$command" == add ]] && return
      mapfile -t COMPREPLY < <(compgen -W "$(_coblk_device_ids)" -- "$cur")
      return
      ;;
    COLUMNS)
      # The columns listed after the options; complete the last of a
      # comma-separated list ("NAME,DA" -> "NAME,DATA").
      local done_part="" last=$cur columns
      if [[ "$cur" == *,* ]]; then
        done_part=${cur%,*},
        last=${cur##*,}
      fi
      columns=$(_coblk_help "$bin" "$command" | awk '/^Available columns/ { on = 1; next } on && /^  [A-Z]/ { print $1 }')
      local c
      COMPREPLY=()
      for c in $columns; do
        [[ "$c" == "${last^^}"* ]] && COMPREPLY+=("$done_part$c")
      done
      compopt -o nospace 2>/dev/null
      return
      ;;
    "")
      COMPREPLY=()
      return
      ;;
  esac
  choices=$(_coblk_choices "$text")
  if [[ -z "$choices" ]]; then
    # Another option with a value of the same name may list them.
    local other_value other_help
    while IFS=$'\x1f' read -r _ other_value other_help; do
      if [[ "$other_value" == "$kind" ]]; then
        choices=$(_coblk_choices "$other_help")
        [[ -n "$choices" ]] && break
      fi
    done < <(_coblk_options "$bin" "$command")
  fi
  mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
}

# _coblk: the completion function, for `complete -F _coblk coblk`.
_coblk() {
  local bin=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} cword=$COMP_CWORD
  local prev=""
  ((cword > 0)) && prev=${COMP_WORDS[cword - 1]}
  COMPREPLY=()
  # The word is as typed: bash has not expanded a leading ~/ in it.
  # shellcheck disable=SC2088 # the literal "~/" is what is matched
  [[ "$bin" == "~/"* ]] && bin=$HOME/${bin#"~/"}
  command -v "$bin" >/dev/null 2>&1 || return 0

  if ((cword == 1)); then
    mapfile -t COMPREPLY < <(compgen -W "$(_coblk_commands "$bin") --help --version" -- "$cur")
    return 0
  fi
  local command=${COMP_WORDS[1]}
  [[ " $(_coblk_commands "$bin" | tr '\n' ' ') " == *" $command "* ]] || return 0

  # "--opt=VALUE": bash splits it at '=' when '=' is in COMP_WORDBREAKS.
  local option="" prefix=""
  if [[ "$cur" == --*=* ]]; then
    # One word (no '=' in COMP_WORDBREAKS): the replies replace all of it.
    option=${cur%%=*}
    prefix=$option=
    cur=${cur#*=}
  elif [[ "$cur" == "=" ]] && ((cword > 2)); then
    option=$prev
    cur=""
  elif [[ "$prev" == "=" ]] && ((cword > 3)); then
    option=${COMP_WORDS[cword - 2]}
  elif [[ "$prev" == -* ]]; then
    # Only an option that takes a value makes this word its value.
    local names value help
    while IFS=$'\x1f' read -r names value help; do
      if [[ " $names " == *" $prev "* && -n "$value" ]]; then
        option=$prev
        break
      fi
    done < <(_coblk_options "$bin" "$command")
  fi
  if [[ -n "$option" ]]; then
    _coblk_values "$bin" "$command" "$option" "$cur"
    if [[ -n "$prefix" ]]; then
      local i
      for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=$prefix${COMPREPLY[i]}; done
    fi
    return 0
  fi

  if [[ "$cur" == -* || -z "$cur" ]]; then
    local words="" names value help
    while IFS=$'\x1f' read -r names value help; do
      words+=" $names"
    done < <(_coblk_options "$bin" "$command")
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  fi
  return 0
}

complete -F _coblk coblk

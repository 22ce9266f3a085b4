# bash completion for shoal(1)
# Installed as share/bash-completion/completions/shoal.

_shoal_instances() {
    shoal ps -a -o wide 2>/dev/null | awk 'NR > 1 { print $1; print $2 }'
}

_shoal_images() {
    shoal image ls -o wide 2>/dev/null |
        awk 'NR > 1 && $1 != "<none>" { print $1 ":" $2; print $1 }' | sort -u
}

_shoal_hosts() {
    shoal hosts 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_shoal_tokens() {
    shoal token ls 2>/dev/null | awk 'NR > 1 { print $2 }'
}

_shoal() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -n : || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="run ps inspect logs stop start restart rm image images hosts host consolidate events token version help"
    local global="--url --token --help --version"

    # Find the command (and the subcommand for image/host), skipping globals.
    local i cmd="" sub="" cmd_at=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --url | --token) ((i++)) ;;
        -*) ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=${words[i]}
                cmd_at=$i
            elif [[ -z $sub && ($cmd == image || $cmd == host || $cmd == token) ]]; then
                sub=${words[i]}
            fi
            ;;
        esac
    done

    case $prev in
    --url | --token | -n | --name | -c | --count | -m | --memory | --vcpus | \
        -e | --env | -p | --publish | --since | --max | --timeout | --tail | \
        --max-instances | --max-memory | --max-vcpus)
        return ;;
    -o | --output)
        COMPREPLY=($(compgen -W "table json wide" -- "$cur"))
        return ;;
    --restart)
        COMPREPLY=($(compgen -W "never on-failure always" -- "$cur"))
        return ;;
    --host)
        COMPREPLY=($(compgen -W "$(_shoal_hosts)" -- "$cur"))
        return ;;
    -s | --scope)
        if [[ $cmd == token ]]; then
            COMPREPLY=($(compgen -W "read-only operator admin" -- "$cur"))
        fi
        return ;;
    -t | --domain-type)
        if [[ $cmd == host ]]; then
            COMPREPLY=($(compgen -W "auto kvm qemu" -- "$cur"))
        fi
        return ;;
    -l | --label | --selector)
        return ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts=""
    case $cmd in
    run)
        if [[ $prev == --initrd ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
            return
        fi
        opts="--name --count --memory --vcpus --env --label --publish --no-network --restart --host --spread --affinity --anti-affinity --host-affinity --host-anti-affinity --attach --no-wait --ready --health --health-interval --health-timeout --health-retries --cmdline --initrd --scale-to-zero --output --help"
        if [[ $cur != -* ]]; then
            # Only the IMAGE before "--" is completed.
            for ((i = cmd_at + 1; i < cword; i++)); do
                [[ ${words[i]} == -- ]] && return
            done
            COMPREPLY=($(compgen -W "$(_shoal_images)" -- "$cur"))
            __ltrim_colon_completions "$cur" 2>/dev/null
            return
        fi ;;
    ps) opts="--all --selector --host --quiet --watch --output --help" ;;
    inspect | logs | stop | start | restart | rm)
        case $cmd in
        logs) opts="--follow --tail --help" ;;
        stop) opts="--selector --timeout --help" ;;
        rm) opts="--selector --force --help" ;;
        *) opts="--selector --help" ;;
        esac
        if [[ $cur != -* ]]; then
            COMPREPLY=($(compgen -W "$(_shoal_instances)" -- "$cur"))
            return
        fi ;;
    images) opts="--name --selector --quiet --output --help" ;;
    image)
        if [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "push ls inspect set tag rm" -- "$cur"))
            return
        fi
        case $sub in
        push)
            opts="--label --initrd --quiet --output --help"
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
                return
            fi ;;
        ls) opts="--name --selector --quiet --output --help" ;;
        set)
            case $prev in
            --firmware) COMPREPLY=($(compgen -W "qboot seabios" -- "$cur")); return ;;
            --exit) COMPREPLY=($(compgen -W "status debug-exit poweroff" -- "$cur")); return ;;
            --cmdline) COMPREPLY=($(compgen -W "shoal unikraft solo5 raw" -- "$cur")); return ;;
            --ready) COMPREPLY=($(compgen -W "default status none tcp: http: console:" -- "$cur")); return ;;
            --health) COMPREPLY=($(compgen -W "none tcp: http:" -- "$cur")); return ;;
            esac
            opts="--firmware --cmdline --exit --ready --health --health-interval --health-timeout --health-retries --warm-pool --output --help"
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "$(_shoal_images)" -- "$cur"))
                __ltrim_colon_completions "$cur" 2>/dev/null
                return
            fi ;;
        inspect | tag | rm)
            case $sub in
            rm) opts="--force --help" ;;
            inspect) opts="--output --help" ;;
            *) opts="--help" ;;
            esac
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "$(_shoal_images)" -- "$cur"))
                __ltrim_colon_completions "$cur" 2>/dev/null
                return
            fi ;;
        esac ;;
    hosts) opts="--output --help" ;;
    host)
        if [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "add ls inspect cordon uncordon drain rm" -- "$cur"))
            return
        fi
        case $sub in
        add) opts="--label --domain-type --help" ;;
        drain) opts="--dry-run --output --help" ;;
        *) opts="--help" ;;
        esac
        if [[ $cur != -* && $sub != add && $sub != ls ]]; then
            COMPREPLY=($(compgen -W "$(_shoal_hosts)" -- "$cur"))
            return
        fi ;;
    consolidate) opts="--dry-run --output --help" ;;
    token)
        if [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "create ls rm" -- "$cur"))
            return
        fi
        case $sub in
        create) opts="--scope --selector --max-instances --max-memory --max-vcpus --quiet --output --help" ;;
        ls | list) opts="--output --help" ;;
        rm | revoke)
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "$(_shoal_tokens)" -- "$cur"))
                return
            fi
            opts="--help" ;;
        esac ;;
    events) opts="--since --max --timeout --output --help" ;;
    esac
    COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
}
complete -F _shoal shoal

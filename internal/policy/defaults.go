package policy

// Platform groups of the default rules.
var (
	ciscoLike = []string{"cisco_ios", "cisco_iosxe", "cisco_nxos", "cisco_iosxr", "arista_eos", "generic"}
	network   = []string{"cisco_ios", "cisco_iosxe", "cisco_nxos", "cisco_iosxr", "arista_eos", "juniper_junos", "generic"}
	junos     = []string{"juniper_junos", "generic"}
	linuxOnly = []string{"linux"}
	// shellHosts are the platforms whose commands may reach a Unix shell: the generic profile
	// answers any prompt, a shell's included.
	shellHosts = []string{"linux", "generic"}
)

const operator = "operator"

// Defaults returns the built-in policy, which applies until an admin stores another: admins may
// run anything; operators may run read-only commands (show, ping, traceroute and read-only
// output filters on network devices, an allow-list on Linux); everything else is refused, the
// dangerous commands by a rule that names why. The deny rules come first so that an abbreviation
// that could mean a dangerous command is refused with its reason. See docs/policy.md.
func Defaults() []Rule {
	return []Rule{
		{ID: "admin-any", Effect: Allow, Roles: []string{"admin"}, Pattern: "**", Reason: "admins may run any command"},

		// Chaining that hides a second command or writes a file.
		{ID: "deny-substitution", Effect: Deny, Pattern: "$(", Reason: "command substitution runs a hidden command"},
		{ID: "deny-redirect", Effect: Deny, Pattern: "{>,<}", Reason: "redirection reads or writes files on the device"},

		// Reboots.
		{ID: "deny-reload", Effect: Deny, Platforms: ciscoLike, Pattern: "reload", Reason: "reboots the device"},
		{ID: "deny-junos-reboot", Effect: Deny, Platforms: junos, Pattern: "request system {reboot,halt,power-off,power-cycle}", Reason: "reboots or halts the device"},
		{ID: "deny-linux-reboot", Effect: Deny, Platforms: shellHosts, Pattern: "{reboot,halt,poweroff,shutdown,kexec}", Reason: "reboots or halts the host"},
		{ID: "deny-linux-init", Effect: Deny, Platforms: shellHosts, Pattern: "{init,telinit} {0,1,6,s}", Reason: "reboots, halts or isolates the host"},
		{ID: "deny-linux-systemctl-power", Effect: Deny, Platforms: shellHosts, Pattern: "systemctl {reboot,poweroff,halt,kexec,rescue,emergency,isolate}", Reason: "reboots, halts or isolates the host"},

		// Erases and deletes.
		{ID: "deny-write-erase", Effect: Deny, Platforms: ciscoLike, Pattern: "write erase", Reason: "erases the startup configuration"},
		{ID: "deny-erase", Effect: Deny, Platforms: ciscoLike, Pattern: "{erase,format,delete,squeeze,rmdir}", Reason: "erases or deletes files or file systems"},
		{ID: "deny-junos-zeroize", Effect: Deny, Platforms: junos, Pattern: "request system zeroize", Reason: "erases the device"},
		{ID: "deny-junos-file", Effect: Deny, Platforms: junos, Pattern: "file {delete,rename,copy}", Reason: "changes files on the device"},
		{ID: "deny-linux-erase", Effect: Deny, Platforms: shellHosts, Pattern: "{rm,rmdir,shred,dd,mkfs,wipefs,truncate,unlink,mv,fdisk,parted}", Reason: "erases, moves or deletes files or disks"},

		// Configuration changes.
		{ID: "deny-configure", Effect: Deny, Platforms: ciscoLike, Pattern: "{configure,copy}", Reason: "changes the configuration"},
		{ID: "deny-junos-configure", Effect: Deny, Platforms: junos, Pattern: "{configure,edit,set,delete,load,commit,rollback}", Reason: "changes the configuration"},

		// Shells, interpreters and privilege.
		{ID: "deny-shell", Effect: Deny, Platforms: ciscoLike, Pattern: "{bash,run,tclsh,guestshell,python,python3}", Reason: "opens a shell or an interpreter"},
		{ID: "deny-junos-shell", Effect: Deny, Platforms: junos, Pattern: "start shell", Reason: "opens a shell"},
		{ID: "deny-enable", Effect: Deny, Platforms: ciscoLike, Pattern: "enable", Reason: "raises the session's privilege level"},
		{ID: "deny-linux-shell", Effect: Deny, Platforms: shellHosts,
			Pattern: "{bash,sh,dash,zsh,ksh,csh,tcsh,fish,busybox,python,python2,python3,perl,ruby,php,node,lua,awk,gawk,sudo,su,doas,env,exec,eval,nohup,xargs,nc,ncat,socat,vi,vim,nano,crontab,at}",
			Reason:  "opens a shell or an interpreter or changes user"},

		// Disruptive operational commands.
		{ID: "deny-clear", Effect: Deny, Platforms: network, Pattern: "clear", Reason: "clears sessions, counters or state"},
		{ID: "deny-debug", Effect: Deny, Platforms: ciscoLike, Pattern: "debug", Reason: "debugging can overload the device's CPU"},

		// Operators: read-only commands and output filters.
		{ID: "allow-show", Effect: Allow, Roles: []string{operator}, Platforms: network, Pattern: "{show,ping,traceroute}", Reason: "read-only commands"},
		{ID: "allow-generic-display", Effect: Allow, Roles: []string{operator}, Platforms: []string{"generic"}, Pattern: "display", Reason: "read-only commands"},
		{ID: "allow-filter-ios", Effect: Allow, Roles: []string{operator}, Platforms: []string{"cisco_ios", "cisco_iosxe"}, Pattern: "| {include,exclude,begin,section,count}"},
		{ID: "allow-filter-iosxr", Effect: Allow, Roles: []string{operator}, Platforms: []string{"cisco_iosxr"}, Pattern: "| {include,exclude,begin}"},
		{ID: "allow-filter-nxos", Effect: Allow, Roles: []string{operator}, Platforms: []string{"cisco_nxos"},
			Pattern: "| {include,exclude,begin,section,count,grep,egrep,head,last,no-more,json,xml,sort,uniq,wc}"},
		{ID: "allow-filter-eos", Effect: Allow, Roles: []string{operator}, Platforms: []string{"arista_eos"}, Pattern: "| {include,exclude,begin,section,json,no-more,nz}"},
		{ID: "allow-filter-junos", Effect: Allow, Roles: []string{operator}, Platforms: []string{"juniper_junos"},
			Pattern: "| {count,display,except,find,last,match,no-more,resolve,trim}"},
		{ID: "allow-filter-generic", Effect: Allow, Roles: []string{operator}, Platforms: []string{"generic"}, Pattern: "| {include,exclude,begin,count}"},
		{ID: "deny-output-pipe", Effect: Deny, Platforms: network, Pattern: "|", Reason: "output may go only through read-only filters (include, exclude, begin, ...); this one can write files or run commands"},

		// Operators on Linux: an allow-list, matched word for word (no abbreviations).
		{ID: "allow-linux-info", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly,
			Pattern: "{uptime,uname,whoami,id,df,free,lscpu,lsblk,lsmod,nproc,ps,w,who,last,vmstat,arch}", Reason: "read-only commands"},
		{ID: "allow-linux-hostname", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "{hostname,date} {,-i,-f,-s,-d,--fqdn,-u,-r,-i} $"},
		{ID: "allow-linux-ip", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly,
			Pattern: "ip {,-4,-6,-br,-brief,-s,-d,-c,-j} {a,addr,address,r,route,l,link,n,neigh,neighbor,neighbour,rule} $"},
		{ID: "allow-linux-ip-show", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly,
			Pattern: "ip {,-4,-6,-br,-brief,-s,-d,-c,-j} {a,addr,address,r,route,l,link,n,neigh,neighbor,neighbour,rule} {show,list,ls,get}"},
		{ID: "allow-linux-sockets", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly,
			Pattern: "{ss,netstat} {,-s,-t,-u,-l,-n,-a,-p,-i,-r,-rn,-tln,-tlnp,-tunl,-tunlp,-tulpn,-lntp,-tan,-uan,-an} $"},
		{ID: "allow-linux-cat", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly,
			Pattern: "cat {/proc/cpuinfo,/proc/meminfo,/proc/loadavg,/proc/uptime,/proc/version,/proc/mounts,/proc/net/dev,/etc/os-release,/etc/hostname,/etc/resolv.conf} $"},
		{ID: "allow-linux-systemctl", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "systemctl {status,is-active,is-enabled,list-units,list-timers}"},
		{ID: "allow-linux-systemctl-failed", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "systemctl --failed $"},
		{ID: "allow-linux-ping", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "ping -c {1,2,3,4,5} * $"},
		{ID: "allow-linux-trace", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "{traceroute,tracepath} * $"},
		{ID: "allow-linux-filter", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "{grep,egrep} {,-i,-v,-c,-w,-iv,-e} * $"},
		{ID: "allow-linux-head", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "{head,tail} {,-1,-5,-10,-20,-50,-100} $"},
		{ID: "allow-linux-head-n", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "{head,tail} -n * $"},
		{ID: "allow-linux-count", Effect: Allow, Roles: []string{operator}, Platforms: linuxOnly, Pattern: "{wc,sort,uniq} {,-l,-n,-r,-nr,-u,-c} $"},
	}
}

// DefaultSet is Defaults compiled.
var DefaultSet = MustCompile(Defaults())

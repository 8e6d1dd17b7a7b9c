#!/usr/bin/env bash
# Markdown tables of one result file, vhdkit beside its competitors.
#   ./summarize.sh convert [SUBJECT]   results/convert.tsv (SUBJECT: vhdtool)
#   ./summarize.sh TAG [SUBJECT]       results/TAG.tsv; SUBJECT defaults to
#                                      nbdkit-vhd-vpc (nbd*), vhdtool-vpc (fuse*),
#                                      else the first target of the file.
# Cells: median over runs (4k jobs: IOPS, other jobs: MB/s; convert: MB/s and
# seconds) and the median p99 latency in us.  Ratio columns "SUBJECT / X":
# the median over runs of SUBJECT's figure divided by X's figure from the same
# run (side by side), with the min-max over runs when there are several;
# > 1 means SUBJECT is faster (for convert: time(X) / time(SUBJECT)).
VHDKIT_SNAPSHOT=${VHDKIT_SNAPSHOT:-0}   # tables only: no copy of the build
. "$(dirname "$0")/lib.sh"
trap - EXIT
tag=${1:?usage: summarize.sh convert|TAG [SUBJECT]}; subj=${2:-}

AWK_LIB='
  function med(s,   a,m,i,j,x) { m=split(s,a," "); if (!m) return "";
    for(i=2;i<=m;i++){x=a[i];for(j=i-1;j>0&&a[j]+0>x+0;j--)a[j+1]=a[j];a[j+1]=x}
    return (m%2)?a[(m+1)/2]:(a[m/2]+a[m/2+1])/2 }
  function lo(s,   a,m,i,x) { m=split(s,a," "); x=a[1]; for(i=2;i<=m;i++) if (a[i]+0<x+0) x=a[i]; return x }
  function hi(s,   a,m,i,x) { m=split(s,a," "); x=a[1]; for(i=2;i<=m;i++) if (a[i]+0>x+0) x=a[i]; return x }
  function nw(s,   a) { return split(s,a," ") }
  function ratiocell(s) { if (s=="") return "-";
    if (nw(s)>1) return sprintf("%.2f (%.2f-%.2f)", med(s), lo(s), hi(s));
    return sprintf("%.2f", med(s)) }
'

if [[ $tag == convert ]]; then
    f="$RESULTS/convert.tsv"; [[ -f $f ]] || die "no $f"
    awk -F'\t' -v subj="${subj:-vhdtool}" "$AWK_LIB"'
      NR>1 { j=$2; c=$3; run=$4
        if (!(j in sj)) { sj[j]=1; jobs[++nj]=j }
        if (!(c in sc)) { sc[c]=1; cases[++nc]=c }
        secs[j,c]=secs[j,c]" "$5; mb[j,c]=mb[j,c]" "$6; ap[j,c]=$7; al[j,c]=$8
        t[j,c,run]=$5; runs[j,run]=1; nr[j,c]++ }
      END {
        printf "| job |"; for (i=1;i<=nc;i++) printf " %s MB/s (s) |", cases[i]
        for (i=1;i<=nc;i++) if (cases[i]!=subj) printf " %s / %s |", subj, cases[i]; print ""
        printf "|---|"; for (i=1;i<=nc;i++) printf "---|"
        for (i=1;i<=nc;i++) if (cases[i]!=subj) printf "---|"; print ""
        for (k=1;k<=nj;k++) { j=jobs[k]; printf "| %s |", j
          for (i=1;i<=nc;i++) { c=cases[i]; m=med(mb[j,c])
            if (m=="") printf " - |"; else printf " %.0f (%.2f) |", m, med(secs[j,c]) }
          for (i=1;i<=nc;i++) { c=cases[i]; if (c==subj) continue; s=""
            for (key in runs) { split(key,q,SUBSEP); if (q[1]!=j) continue; r=q[2]
              if (((j,subj,r) in t) && ((j,c,r) in t) && t[j,subj,r]>0) s=s" "t[j,c,r]/t[j,subj,r] }
            printf " %s |", ratiocell(s) }
          print "" }
        printf "\noutput size, apparent / allocated GiB (last run):\n\n| job |"
        for (i=1;i<=nc;i++) printf " %s |", cases[i]; print ""
        printf "|---|"; for (i=1;i<=nc;i++) printf "---|"; print ""
        for (k=1;k<=nj;k++) { j=jobs[k]; printf "| %s |", j
          for (i=1;i<=nc;i++) { c=cases[i]
            if ((j,c) in ap) printf " %.2f / %.2f |", ap[j,c]/2^30, al[j,c]/2^30; else printf " - |" }
          print "" }
      }' "$f"
    exit 0
fi

f="$RESULTS/$tag.tsv"; [[ -f $f ]] || die "no $f"
if [[ -z $subj ]]; then
    case $tag in nbd*) subj=nbdkit-vhd-vpc;; fuse*) subj=vhdtool-vpc;; esac
fi
awk -F'\t' -v subj="$subj" -v tag="$tag" "$AWK_LIB"'
  function isiops(j) { return (j ~ /4k/) }
  NR>1 && $2 != "precondition" {
    ph=$2; t=$3; j=$4; run=$5
    if (subj=="") subj=t
    if (!(ph in sp)) { sp[ph]=1; phases[++np]=ph }
    if (!((ph,t) in st)) { st[ph,t]=1; nt[ph]++; tg[ph,nt[ph]]=t }
    if (!((ph,j) in sj)) { sj[ph,j]=1; nj[ph]++; jb[ph,nj[ph]]=j }
    v = isiops(j) ? $6 : $7
    val[ph,t,j]=val[ph,t,j]" "v; p99[ph,t,j]=p99[ph,t,j]" "$8
    if ($6>0 && $10>0 && $11>0) cpr[ph,t,j]=cpr[ph,t,j]" "1e6*$11/($6*$10)
    byrun[ph,t,j,run]=v; runs[ph,j,run]=1; rr[run]=1 }
  END {
    nrun=0; for (r in rr) nrun++
    for (p=1;p<=np;p++) { ph=phases[p]; has=((ph,subj) in st)
      printf "\n### %s, phase %s  (4k jobs: IOPS, others: MB/s; [p99 latency us]; RUNS=%d)\n\n| job |", tag, ph, nrun
      for (i=1;i<=nt[ph];i++) printf " %s |", tg[ph,i]
      if (has) for (i=1;i<=nt[ph];i++) if (tg[ph,i]!=subj) printf " %s / %s |", subj, tg[ph,i]
      print ""; printf "|---|"; for (i=1;i<=nt[ph];i++) printf "---|"
      if (has) for (i=1;i<=nt[ph];i++) if (tg[ph,i]!=subj) printf "---|"
      print ""
      for (k=1;k<=nj[ph];k++) { j=jb[ph,k]; printf "| %s |", j
        for (i=1;i<=nt[ph];i++) { t=tg[ph,i]; m=med(val[ph,t,j])
          if (m=="") printf " - |"; else printf " %.0f [%.0f] |", m, med(p99[ph,t,j]) }
        if (has) for (i=1;i<=nt[ph];i++) { t=tg[ph,i]; if (t==subj) continue; s=""
          for (key in runs) { split(key,q,SUBSEP); if (q[1]!=ph || q[2]!=j) continue; r=q[3]
            if (((ph,subj,j,r) in byrun) && ((ph,t,j,r) in byrun) && byrun[ph,t,j,r]>0)
              s=s" "byrun[ph,subj,j,r]/byrun[ph,t,j,r] }
          printf " %s |", ratiocell(s) }
        print "" }
      printf "\nserver CPU time per request, us (median; NBD server, or FUSE daemon + its server):\n\n| job |"
      for (i=1;i<=nt[ph];i++) printf " %s |", tg[ph,i]; print ""
      printf "|---|"; for (i=1;i<=nt[ph];i++) printf "---|"; print ""
      for (k=1;k<=nj[ph];k++) { j=jb[ph,k]; printf "| %s |", j
        for (i=1;i<=nt[ph];i++) { t=tg[ph,i]; m=med(cpr[ph,t,j]); if (m=="") printf " - |"; else printf " %.1f |", m }
        print "" }
    } }' "$f"

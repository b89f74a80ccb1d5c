#!/usr/bin/env python3
# The cost model of BENCHMARKS.md ("Cost model: a 100,000-user tenant"):
# request counts per Entra request shape (tests/api/costs.rs, exact), capacity
# units per shape (item sizes assumed below), and on-demand list prices
# (us-east-1). Prints the table rows. Change an assumption, re-run, and copy
# the rows.
#
#   python3 scripts/cost-model.py
P_WRU=0.625e-6; P_RRU=0.125e-6; P_GBS=0.0000133334; P_INV=0.20e-6; P_APIGW=1.00e-6; P_SM_CALL=0.05/10000; P_SECRET=0.40
MEM=0.25; MS=0.030  # 256 MB, 30 ms billed per SCIM request (assumed)
SYNC_MEM=0.5
# per-shape: (requests, RRU, WRU)
shapes = {
 "match miss (1 GetItem)": (1, 1, 0),
 "POST /Users (tx: user ~1.5 KB, 2 claims, email index, dirty mark, counter)": (1, 0, 2*2+2*5),
 "PATCH /Users manager (GetItem, Query, tx: user, dirty mark)": (3, 2, 2*2+2*1),
 "POST /Groups (tx: group, 2 claims, counter)": (1, 0, 2*4),
 "PATCH /Groups add 10 members (1 tx: bump + 10 x (guard 2 KB user, head, pair, mirror, mark))": (1, 0, 2 + 10*(4+2*4)),
 "PATCH /Users attributes (GetItem, Query, tx)": (3, 2, 2*2+2*1),
 "PATCH /Users disable (same)": (3, 2, 2*2+2*1),
 "PATCH /Groups add or remove 1 member": (1, 0, 2 + 4 + 2*4),
}
init = {
 "match miss (1 GetItem)": 100_000 + 2_000,
 "POST /Users (tx: user ~1.5 KB, 2 claims, email index, dirty mark, counter)": 100_000,
 "PATCH /Users manager (GetItem, Query, tx: user, dirty mark)": 90_000,
 "POST /Groups (tx: group, 2 claims, counter)": 2_000,
 "PATCH /Groups add 10 members (1 tx: bump + 10 x (guard 2 KB user, head, pair, mirror, mark))": 30_000,
}
month = {  # per 30 days
 "match miss (1 GetItem)": 30*50,
 "POST /Users (tx: user ~1.5 KB, 2 claims, email index, dirty mark, counter)": 30*50,
 "PATCH /Users attributes (GetItem, Query, tx)": 30*1_000,
 "PATCH /Users disable (same)": 30*50,
 "PATCH /Groups add or remove 1 member": 30*500,
}
def tally(mix):
    req=rru=wru=inv=0
    for k,n in mix.items():
        r,rr,w = shapes[k]; req+=r*n; rru+=rr*n; wru+=w*n; inv+=n
    return req,rru,wru,inv
def money(rru,wru,inv,gbs,sm_calls,extra=0):
    return rru*P_RRU + wru*P_WRU + inv*(P_INV+P_APIGW) + gbs*P_GBS + sm_calls*P_SM_CALL + extra
# Members sync: full = 2.08 requests/user; writes: member tx (member ~1 KB, link, email claim) 2*3 WRU + dirty delete 1 WRU;
# reads: 100k user items of 1.5 KB read by Query (consistent, 4 KB per RRU) + dirty marks + links/claims batch reads.
sync_full_req = int(2.08*100_000); sync_full_wru = 100_000*(2*3+1); sync_full_rru = int(100_000*1.5/4) + 100_000//40 + 2*100_000
sync_full_gbs = 1390*SYNC_MEM  # measured wall on the emulator: an upper bound
# daily incremental: ~1,600 changed users/day (attributes + new + disabled), 2.05 requests each.
chg=1_000+50+50+500
sync_inc_req=int(2.05*chg)+5; sync_inc_wru=chg*(2*3+1); sync_inc_rru=chg*2
for name,mix,sm,sync in [("initial cycle",init,16_080,(sync_full_req,sync_full_rru,sync_full_wru,sync_full_gbs,1)),
                         ("month of steady state",month,30*1_600,(30*sync_inc_req,30*sync_inc_rru,30*sync_inc_wru,30*10*SYNC_MEM,30))]:
    req,rru,wru,inv = tally(mix)
    gbs = inv*MS*MEM
    sreq,srru,swru,sgbs,sinv = sync
    last_call = 0 if name=="initial cycle" else 30*288*2  # UpdateItem per 5 min per warm instance (2 instances), 1 WRU
    total = money(rru+srru, wru+swru+last_call, inv+0, gbs+sgbs, sm, P_SECRET if name!="initial cycle" else 0) + sinv*P_INV
    print(f"| {name} | {inv:,} | {req:,} + {sreq:,} sync | {rru+srru:,} | {wru+swru+last_call:,} | {gbs+sgbs:,.0f} | {sm:,} | ${total:,.2f} |")
    print("   detail: scim rru",rru,"wru",wru,"sync rru",srru,"wru",swru, "dyn $", (rru+srru)*P_RRU+(wru+swru+last_call)*P_WRU, "lambda $", (gbs+sgbs)*P_GBS+inv*P_INV, "apigw $", inv*P_APIGW, "sm $", sm*P_SM_CALL)

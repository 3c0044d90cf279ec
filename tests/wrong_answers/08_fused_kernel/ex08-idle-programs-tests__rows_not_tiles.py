# Shares rows instead of tiles among the programs, forgetting that a program takes whole tiles.
def idle_programs(m, block_m, max_programs):
    if m == 0:
        return 0
    programs = min(-(-m // block_m), max_programs)
    rows_per_program = -(-m // programs)
    busy = -(-m // rows_per_program)
    return programs - busy

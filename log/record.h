// Records and journal entries are in format.h now.
#pragma once

#include "log/format.h"

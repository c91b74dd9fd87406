// shortest.cc: the C face of double-conversion's SHORTEST mode (see
// shortest.h). No exceptions, no allocation.
#include "common/shortest.h"

#include <double-conversion/double-to-string.h>

extern "C" int
sl_shortest_digits(double d, char digits[18], int *point)
{
    bool sign;
    int length = 0;
    double_conversion::DoubleToStringConverter::DoubleToAscii(
        d, double_conversion::DoubleToStringConverter::SHORTEST, 0, digits, 18, &sign,
        &length, point);
    return length;
}
